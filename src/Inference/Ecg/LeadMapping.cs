using System.Numerics;
using HubertEcg.Inference.Preprocessing;

namespace HubertEcg.Inference.Ecg;

/// <summary>
/// Maps channel names to the 12 standard leads (<see cref="StandardLeads.Names"/>), reorders them, ignores extra
/// channels, and derives III, aVR, aVL and aVF from I and II when they are missing.
/// </summary>
/// <remarks>
/// Names match case-insensitively after dropping a "lead"/"ecg" prefix and spaces, '_' and '-': I/II/III also as
/// DI/DII/DIII and D1/D2/D3 (CODE, Brazilian/European devices), V1..V6 also as C1..C6 (IEC chest-lead names).
/// Coded names (<c>MDC_ECG_LEAD_I</c>, SCP-ECG's <c>5.6.3-9-1</c>) go through <see cref="LeadCodes"/>.
/// MLII, MLI, MLIII and other modified (ambulatory) leads are deliberately not mapped: their electrodes sit on the
/// torso, so their waveforms differ from the limb leads the model was trained on.
/// </remarks>
public static class LeadMapping
{
    private static readonly Dictionary<string, string> Aliases = BuildAliases();

    /// <summary>The standard lead a channel name denotes, or null.</summary>
    public static string? StandardName(string? channelName)
    {
        if (string.IsNullOrWhiteSpace(channelName))
        {
            return null;
        }

        if (LeadCodes.FromCode(channelName) is { } coded)
        {
            return coded;
        }

        var key = Normalize(channelName);
        return Aliases.TryGetValue(key, out var name) ? name : null;
    }

    /// <summary>
    /// The 12 standard leads of <paramref name="signal"/> in standard order. <paramref name="units"/>, when given,
    /// are the units of the signal's channels; every mapped lead must be in mV.
    /// </summary>
    public static EcgSignal ToStandard12(EcgSignal signal, IReadOnlyList<string>? units = null)
    {
        ArgumentNullException.ThrowIfNull(signal);
        var id = signal.RecordId;
        if (!double.IsFinite(signal.SamplingRate) || signal.SamplingRate <= 0)
        {
            throw new EcgFormatException(id, $"sampling rate {signal.SamplingRate} Hz is not a positive number");
        }

        if (signal.SampleCount == 0)
        {
            throw new EcgFormatException(id, "record has no samples");
        }

        var standard = StandardLeads.Names;
        var found = new double[]?[standard.Count];
        var foundAt = new int[standard.Count];
        for (var c = 0; c < signal.LeadNames.Count; c++)
        {
            var name = StandardName(signal.LeadNames[c]);
            if (name is null)
            {
                continue;
            }

            var index = IndexOf(name);
            if (found[index] is not null)
            {
                throw new EcgFormatException(id, $"lead {name} appears twice (channels {foundAt[index]} and {c})");
            }

            if (units is not null && c < units.Count && Units.ToMillivolts(units[c]) != 1.0)
            {
                throw new EcgFormatException(id, $"lead {name} (channel {c}) is in '{units[c]}', not mV");
            }

            found[index] = signal.Leads[c];
            foundAt[index] = c;
        }

        int i = IndexOf("I"), ii = IndexOf("II");
        var missing = new List<string>();
        for (var k = 0; k < standard.Count; k++)
        {
            if (found[k] is null && !(IsDerivable(standard[k]) && found[i] is not null && found[ii] is not null))
            {
                missing.Add(standard[k]);
            }
        }

        if (missing.Count > 0)
        {
            var present = string.Join(", ", signal.LeadNames.Take(16));
            throw new EcgFormatException(id, $"missing lead{(missing.Count > 1 ? "s" : string.Empty)} {string.Join(", ", missing)} (channels: {present})");
        }

        var n = signal.SampleCount;
        var leadI = found[i]!;
        var leadII = found[ii]!;
        var leads = new double[standard.Count][];
        for (var k = 0; k < standard.Count; k++)
        {
            if (found[k] is { } lead)
            {
                leads[k] = lead;
                continue;
            }

            var derived = GC.AllocateUninitializedArray<double>(n);
            Derive(standard[k], leadI, leadII, derived);
            leads[k] = derived;
        }

        for (var k = 0; k < standard.Count; k++)
        {
            CheckValues(id, standard[k], leads[k]);
        }

        return new EcgSignal(id, signal.SamplingRate, standard, leads) { Metadata = signal.Metadata };
    }

    /// <summary>
    /// A limb lead from I and II, in floating point from the physical values: III = II - I, aVR = -(I + II) / 2,
    /// aVL = I - II / 2, aVF = II - I / 2 (a halving is exact, so it is taken as a product by 0.5), several samples a
    /// step where the hardware allows.
    /// </summary>
    private static void Derive(string lead, double[] leadI, double[] leadII, double[] derived)
    {
        var n = derived.Length;
        var mode = lead switch { "III" => 0, "aVR" => 1, "aVL" => 2, _ => 3 };
        var t = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var half = new Vector<double>(0.5);
            for (; t + Vector<double>.Count <= n; t += Vector<double>.Count)
            {
                var a = new Vector<double>(leadI, t);
                var b = new Vector<double>(leadII, t);
                var value = mode switch
                {
                    0 => b - a,
                    1 => -(a + b) * half,
                    2 => a - (b * half),
                    _ => b - (a * half),
                };
                value.CopyTo(derived, t);
            }
        }

        for (; t < n; t++)
        {
            derived[t] = mode switch
            {
                0 => leadII[t] - leadI[t],
                1 => -(leadI[t] + leadII[t]) / 2,
                2 => leadI[t] - (leadII[t] / 2),
                _ => leadII[t] - (leadI[t] / 2),
            };
        }
    }

    private static void CheckValues(string id, string lead, double[] values)
    {
        if (values.Length > 0 && SampleScan.AllFinite(values))
        {
            return;
        }

        var valid = 0;
        for (var t = 0; t < values.Length; t++)
        {
            var v = values[t];
            if (double.IsInfinity(v))
            {
                throw new EcgFormatException(id, $"lead {lead} sample {t} is infinite");
            }

            if (!double.IsNaN(v))
            {
                valid++;
            }
        }

        if (valid == 0)
        {
            throw new EcgFormatException(id, $"lead {lead} has no valid samples");
        }
    }

    private static bool IsDerivable(string lead) => lead is "III" or "aVR" or "aVL" or "aVF";

    private static int IndexOf(string name)
    {
        var names = StandardLeads.Names;
        for (var k = 0; k < names.Count; k++)
        {
            if (names[k] == name)
            {
                return k;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(name), name, "not a standard lead");
    }

    private static string Normalize(string name)
    {
        var s = name.Trim().ToUpperInvariant().Replace(" ", string.Empty, StringComparison.Ordinal)
            .Replace("_", string.Empty, StringComparison.Ordinal).Replace("-", string.Empty, StringComparison.Ordinal);
        foreach (var prefix in new[] { "LEAD", "ECG" })
        {
            if (s.Length > prefix.Length && s.StartsWith(prefix, StringComparison.Ordinal))
            {
                s = s[prefix.Length..];
            }
        }

        return s;
    }

    private static Dictionary<string, string> BuildAliases()
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in StandardLeads.Names)
        {
            map[name.ToUpperInvariant()] = name;
        }

        map["DI"] = "I";
        map["DII"] = "II";
        map["DIII"] = "III";
        map["D1"] = "I";
        map["D2"] = "II";
        map["D3"] = "III";
        for (var k = 1; k <= 6; k++)
        {
            map[$"C{k}"] = $"V{k}";
        }

        return map;
    }
}
