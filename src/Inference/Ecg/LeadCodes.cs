using System.Globalization;

namespace HubertEcg.Inference.Ecg;

/// <summary>
/// The coded lead names clinical formats use, mapped to the standard leads: SCP-ECG lead numbers (section 3 of an
/// SCP-ECG file; DICOM's SCPECG coding scheme writes them as <c>5.6.3-9-N</c>) and ISO/IEEE 11073 MDC reference ids
/// (<c>MDC_ECG_LEAD_I</c>, used by DICOM and HL7 aECG). Only the 12 standard leads are mapped; other codes (Frank
/// leads, modified or ambulatory leads) give null, so their channels are ignored like any unknown channel.
/// </summary>
public static class LeadCodes
{
    /// <summary>The SCPECG coding scheme's code value prefix: the lead number follows it.</summary>
    public const string ScpCodePrefix = "5.6.3-9-";

    private static readonly Dictionary<int, string> ScpNumbers = new()
    {
        [1] = "I", [2] = "II", [3] = "V1", [4] = "V2", [5] = "V3", [6] = "V4", [7] = "V5", [8] = "V6",
        [61] = "III", [62] = "aVR", [63] = "aVL", [64] = "aVF",
    };

    private static readonly Dictionary<string, string> Mdc = new(StringComparer.OrdinalIgnoreCase)
    {
        ["MDC_ECG_LEAD_I"] = "I", ["MDC_ECG_LEAD_II"] = "II", ["MDC_ECG_LEAD_III"] = "III",
        ["MDC_ECG_LEAD_AVR"] = "aVR", ["MDC_ECG_LEAD_AVL"] = "aVL", ["MDC_ECG_LEAD_AVF"] = "aVF",
        ["MDC_ECG_LEAD_V1"] = "V1", ["MDC_ECG_LEAD_V2"] = "V2", ["MDC_ECG_LEAD_V3"] = "V3",
        ["MDC_ECG_LEAD_V4"] = "V4", ["MDC_ECG_LEAD_V5"] = "V5", ["MDC_ECG_LEAD_V6"] = "V6",
    };

    /// <summary>The standard lead of SCP-ECG lead number <paramref name="number"/>, or null (not one of the 12).</summary>
    public static string? FromScpNumber(int number) => ScpNumbers.GetValueOrDefault(number);

    /// <summary>The SCP-ECG lead number of a standard lead (the inverse of <see cref="FromScpNumber"/>).</summary>
    public static int ScpNumber(string standardLead) =>
        ScpNumbers.First(kv => string.Equals(kv.Value, standardLead, StringComparison.Ordinal)).Key;

    /// <summary>The MDC reference id of a standard lead (<c>MDC_ECG_LEAD_AVR</c> for aVR).</summary>
    public static string MdcCode(string standardLead) =>
        Mdc.First(kv => string.Equals(kv.Value, standardLead, StringComparison.Ordinal)).Key;

    /// <summary>
    /// The standard lead a coded name denotes: an MDC reference id, or an SCPECG code value <c>5.6.3-9-N</c>; null for
    /// any other text (including codes of leads that are not among the 12).
    /// </summary>
    public static string? FromCode(string? code)
    {
        if (string.IsNullOrWhiteSpace(code))
        {
            return null;
        }

        var trimmed = code.Trim();
        if (Mdc.TryGetValue(trimmed, out var lead))
        {
            return lead;
        }

        return trimmed.StartsWith(ScpCodePrefix, StringComparison.Ordinal)
            && int.TryParse(trimmed.AsSpan(ScpCodePrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var number)
            ? FromScpNumber(number)
            : null;
    }
}
