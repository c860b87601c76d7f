using System.Globalization;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Wfdb;

/// <summary>One signal line of a WFDB header, with the defaults of the WFDB header specification filled in.</summary>
public sealed class WfdbSignalSpec
{
    /// <summary>WFDB's default gain for uncalibrated signals (ADC units per physical unit).</summary>
    public const double DefaultGain = 200.0;

    public required string FileName { get; init; }

    /// <summary>Signal format (8, 16, 24, 32, 61, 80, 160, 212, 310, 311; 0 for a null signal).</summary>
    public required int Format { get; init; }

    public int SamplesPerFrame { get; init; } = 1;

    /// <summary>Skew in frames (the header states it in samples; WFDB rounds it to frames).</summary>
    public int Skew { get; init; }

    /// <summary>Bytes to skip at the start of the signal file (a prolog such as a MATLAB header).</summary>
    public long ByteOffset { get; init; }

    /// <summary>ADC units per physical unit as written; 0 when missing or zero (the signal is uncalibrated).</summary>
    public double Gain { get; init; }

    /// <summary>The gain used to compute physical values: <see cref="Gain"/>, or <see cref="DefaultGain"/> when uncalibrated.</summary>
    public double EffectiveGain => Gain == 0 ? DefaultGain : Gain;

    public bool IsCalibrated => Gain != 0;

    /// <summary>ADC value of 0 physical units; defaults to <see cref="AdcZero"/>.</summary>
    public int Baseline { get; init; }

    /// <summary>Physical units; millivolts ("mV") when the header does not say.</summary>
    public string Units { get; init; } = "mV";

    public int AdcResolution { get; init; }

    public int AdcZero { get; init; }

    /// <summary>Value of the first sample (the starting point of format 8 differences); defaults to <see cref="AdcZero"/>.</summary>
    public int InitialValue { get; init; }

    /// <summary>16-bit checksum of all samples of the signal, or null when the header has none.</summary>
    public int? Checksum { get; init; }

    /// <summary>Block size in bytes for signals read from tape or special devices; it does not change how a file is read.</summary>
    public int BlockSize { get; init; }

    public required string Description { get; init; }

    /// <summary>Index of the signal file (group) this signal is stored in.</summary>
    public int Group { get; init; }
}

/// <summary>One segment line of a multi-segment record's master header.</summary>
public sealed class WfdbSegmentSpec
{
    public required string RecordName { get; init; }

    public required long SampleCount { get; init; }

    /// <summary>A null segment ("~"): a gap whose samples are all invalid.</summary>
    public bool IsNull => RecordName == "~";
}

/// <summary>A parsed WFDB header (<c>.hea</c>): the record line, its signal or segment lines, and its comments.</summary>
public sealed class WfdbHeader
{
    /// <summary>WFDB's default sampling frequency when the record line omits it.</summary>
    public const double DefaultFrequency = 250.0;

    private const int MaxSignals = 4096;
    private const int MaxSegments = 1_000_000;

    public required string RecordName { get; init; }

    public required int SignalCount { get; init; }

    /// <summary>Frames per second.</summary>
    public required double SamplingFrequency { get; init; }

    public required double CounterFrequency { get; init; }

    public double BaseCounterValue { get; init; }

    /// <summary>Frames per signal, or 0 when the header leaves it unspecified.</summary>
    public required long SampleCount { get; init; }

    public TimeSpan? BaseTime { get; init; }

    public DateOnly? BaseDate { get; init; }

    public required IReadOnlyList<WfdbSignalSpec> Signals { get; init; }

    /// <summary>Segments of a multi-segment record; null for a single-segment record.</summary>
    public IReadOnlyList<WfdbSegmentSpec>? Segments { get; init; }

    public bool IsMultiSegment => Segments is not null;

    /// <summary>Comment lines, without the leading '#', in order.</summary>
    public required IReadOnlyList<string> Comments { get; init; }

    /// <summary>Parses header text; <paramref name="recordId"/> names the record in errors.</summary>
    public static WfdbHeader Parse(string text, string recordId)
    {
        ArgumentNullException.ThrowIfNull(text);
        var comments = new List<string>();
        var lines = new List<string>();
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.TrimEnd('\r');
            var trimmed = line.TrimStart(' ', '\t');
            if (trimmed.StartsWith('#'))
            {
                comments.Add(trimmed[1..].Trim());
                continue;
            }

            if (trimmed.Length == 0)
            {
                continue;
            }

            if (line.Contains('\0', StringComparison.Ordinal))
            {
                throw new EcgFormatException(recordId, "header contains NUL bytes (not a text header)");
            }

            lines.Add(line);
        }

        if (lines.Count == 0)
        {
            throw new EcgFormatException(recordId, "header has no record line");
        }

        var record = Tokens(lines[0]);
        var nameToken = record[0].Text;
        string recordName = nameToken;
        int? segmentCount = null;
        var slash = nameToken.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            recordName = nameToken[..slash];
            segmentCount = ParseInt(nameToken[(slash + 1)..], recordId, "segment count");
            if (segmentCount < 1 || segmentCount > MaxSegments)
            {
                throw new EcgFormatException(recordId, $"segment count {segmentCount} is out of range");
            }
        }

        if (record.Count < 2)
        {
            throw new EcgFormatException(recordId, "record line has no signal count");
        }

        var signalCount = ParseInt(record[1].Text, recordId, "signal count");
        if (signalCount < 0 || signalCount > MaxSignals)
        {
            throw new EcgFormatException(recordId, $"signal count {signalCount} is out of range");
        }

        var fs = DefaultFrequency;
        var counterFrequency = 0.0;
        var baseCounter = 0.0;
        if (record.Count > 2)
        {
            var token = record[2].Text;
            var fsEnd = token.IndexOf('/', StringComparison.Ordinal);
            fs = ParseDouble(fsEnd < 0 ? token : token[..fsEnd], recordId, "sampling frequency");
            if (fsEnd >= 0)
            {
                var rest = token[(fsEnd + 1)..];
                var paren = rest.IndexOf('(', StringComparison.Ordinal);
                counterFrequency = ParseDouble(paren < 0 ? rest : rest[..paren], recordId, "counter frequency");
                if (paren >= 0)
                {
                    var close = rest.IndexOf(')', paren);
                    if (close < 0)
                    {
                        throw new EcgFormatException(recordId, $"base counter value in '{token}' lacks ')'");
                    }

                    baseCounter = ParseDouble(rest[(paren + 1)..close], recordId, "base counter value");
                }
            }
        }

        if (!(fs > 0) || double.IsInfinity(fs))
        {
            throw new EcgFormatException(recordId, $"sampling frequency {fs.ToString(CultureInfo.InvariantCulture)} is not a positive number");
        }

        if (counterFrequency <= 0)
        {
            counterFrequency = fs;
        }

        long sampleCount = 0;
        if (record.Count > 3)
        {
            sampleCount = ParseLong(record[3].Text, recordId, "number of samples");
            if (sampleCount < 0)
            {
                throw new EcgFormatException(recordId, $"number of samples {sampleCount} is negative");
            }
        }

        TimeSpan? baseTime = null;
        DateOnly? baseDate = null;
        if (record.Count > 4)
        {
            baseTime = ParseTime(record[4].Text, recordId);
            if (record.Count > 5)
            {
                baseDate = ParseDate(record[5].Text, recordId);
            }

            if (record.Count > 6)
            {
                // Not quoted: free text here is not WFDB and may be patient data (errors go to logs and quarantine reasons).
                throw new EcgFormatException(recordId, "record line has unexpected text after the base date");
            }
        }

        List<WfdbSegmentSpec>? segments = null;
        var signals = new List<WfdbSignalSpec>();
        if (segmentCount is { } nseg)
        {
            if (lines.Count - 1 < nseg)
            {
                throw new EcgFormatException(recordId, $"header lists {lines.Count - 1} segments but the record line claims {nseg}");
            }

            segments = new List<WfdbSegmentSpec>(nseg);
            for (var i = 0; i < nseg; i++)
            {
                var tokens = Tokens(lines[1 + i]);
                if (tokens.Count < 2)
                {
                    throw new EcgFormatException(recordId, $"segment line {i} has no length");
                }

                var length = ParseLong(tokens[1].Text, recordId, $"length of segment {tokens[0].Text}");
                if (length < 0)
                {
                    throw new EcgFormatException(recordId, $"segment {tokens[0].Text} has negative length {length}");
                }

                ValidateFileName(tokens[0].Text, recordId, allowNull: true);
                segments.Add(new WfdbSegmentSpec { RecordName = tokens[0].Text, SampleCount = length });
            }
        }
        else
        {
            if (lines.Count - 1 < signalCount)
            {
                throw new EcgFormatException(recordId, $"header has {lines.Count - 1} signal lines but the record line claims {signalCount} signals");
            }

            for (var s = 0; s < signalCount; s++)
            {
                var previous = s == 0 ? null : signals[s - 1];
                signals.Add(ParseSignal(lines[1 + s], s, recordName, previous, recordId));
            }

            var seenFiles = new HashSet<string>(StringComparer.Ordinal);
            for (var s = 0; s < signals.Count; s++)
            {
                if (s > 0 && signals[s].FileName == signals[s - 1].FileName)
                {
                    continue;
                }

                if (signals[s].FileName != "~" && !seenFiles.Add(signals[s].FileName))
                {
                    throw new EcgFormatException(recordId, $"signals of file {signals[s].FileName} are not listed together");
                }
            }
        }

        return new WfdbHeader
        {
            RecordName = recordName,
            SignalCount = signalCount,
            SamplingFrequency = fs,
            CounterFrequency = counterFrequency,
            BaseCounterValue = baseCounter,
            SampleCount = sampleCount,
            BaseTime = baseTime,
            BaseDate = baseDate,
            Signals = signals,
            Segments = segments,
            Comments = comments,
        };
    }

    internal static void ValidateFileName(string name, string recordId, bool allowNull)
    {
        if (allowNull && name == "~")
        {
            return;
        }

        if (name.Length == 0 || name == "-" || name.Contains("..", StringComparison.Ordinal) || Path.IsPathRooted(name)
            || name.Contains('\\', StringComparison.Ordinal) || name.Contains(':', StringComparison.Ordinal)
            || name.Any(char.IsControl))
        {
            throw new EcgFormatException(recordId, $"file name '{name}' is not a plain file name beside the header");
        }
    }

    private static WfdbSignalSpec ParseSignal(string line, int index, string recordName, WfdbSignalSpec? previous, string recordId)
    {
        var tokens = Tokens(line);
        var fileName = tokens[0].Text;
        ValidateFileName(fileName, recordId, allowNull: true);
        if (tokens.Count < 2)
        {
            throw new EcgFormatException(recordId, $"signal {index} has no format");
        }

        var formatText = tokens[1].Text;
        var p = 0;
        while (p < formatText.Length && char.IsAsciiDigit(formatText[p]))
        {
            p++;
        }

        if (p == 0)
        {
            throw new EcgFormatException(recordId, $"signal {index} format '{formatText}' is not a number");
        }

        var format = ParseInt(formatText[..p], recordId, $"signal {index} format");
        if (!WfdbSignalFormats.IsSupported(format))
        {
            throw new EcgFormatException(recordId, WfdbSignalFormats.IsKnownUnsupported(format)
                ? $"signal {index} uses format {format} (FLAC-compressed), which this reader does not support"
                : $"signal {index} has unknown format {format}");
        }

        int spf = 1;
        int skewSamples = 0;
        long byteOffset = 0;
        while (p < formatText.Length)
        {
            var tag = formatText[p++];
            var start = p;
            while (p < formatText.Length && char.IsAsciiDigit(formatText[p]))
            {
                p++;
            }

            if (p == start)
            {
                throw new EcgFormatException(recordId, $"signal {index} format field '{formatText}' is malformed");
            }

            var number = ParseLong(formatText[start..p], recordId, $"signal {index} format field");
            switch (tag)
            {
                case 'x':
                    if (number < 1 || number > 100_000)
                    {
                        throw new EcgFormatException(recordId, $"signal {index} has {number} samples per frame");
                    }

                    spf = (int)number;
                    break;
                case ':':
                    if (number > 100_000_000)
                    {
                        throw new EcgFormatException(recordId, $"signal {index} skew {number} is implausible");
                    }

                    skewSamples = (int)number;
                    break;
                case '+':
                    byteOffset = number;
                    break;
                default:
                    throw new EcgFormatException(recordId, $"signal {index} format field '{formatText}' is malformed");
            }
        }

        double gain = 0;
        int? baseline = null;
        var units = "mV";
        if (tokens.Count > 2)
        {
            var g = tokens[2].Text;
            var end = g.IndexOfAny(['(', '/']);
            gain = ParseDouble(end < 0 ? g : g[..end], recordId, $"signal {index} gain");
            if (end >= 0 && g[end] == '(')
            {
                var close = g.IndexOf(')', end);
                if (close < 0)
                {
                    throw new EcgFormatException(recordId, $"signal {index} baseline in '{g}' lacks ')'");
                }

                baseline = ParseInt(g[(end + 1)..close], recordId, $"signal {index} baseline");
                end = close + 1;
                if (end < g.Length && g[end] != '/')
                {
                    throw new EcgFormatException(recordId, $"signal {index} gain field '{g}' is malformed");
                }
            }

            if (end >= 0 && end < g.Length && g[end] == '/')
            {
                units = g[(end + 1)..];
                if (units.Length == 0)
                {
                    units = "mV";
                }
            }
        }

        var resolution = tokens.Count > 3 ? ParseInt(tokens[3].Text, recordId, $"signal {index} ADC resolution") : 0;
        if (resolution == 0)
        {
            resolution = WfdbSignalFormats.DefaultResolution(format);
        }

        var adcZero = tokens.Count > 4 ? ParseInt(tokens[4].Text, recordId, $"signal {index} ADC zero") : 0;
        var initial = tokens.Count > 5 ? ParseInt(tokens[5].Text, recordId, $"signal {index} initial value") : adcZero;
        int? checksum = tokens.Count > 6 ? ParseInt(tokens[6].Text, recordId, $"signal {index} checksum") : null;
        var blockSize = tokens.Count > 7 ? ParseInt(tokens[7].Text, recordId, $"signal {index} block size") : 0;
        var description = tokens.Count > 8 ? line[tokens[8].Start..].Trim() : $"record {recordName}, signal {index}";

        var group = previous is null ? 0 : previous.FileName == fileName ? previous.Group : previous.Group + 1;
        if (previous is not null && previous.Group == group && (previous.Format != format || previous.BlockSize != blockSize))
        {
            throw new EcgFormatException(recordId, $"signals {index - 1} and {index} share file {fileName} but differ in format or block size");
        }

        if (previous is not null && previous.Group == group && previous.ByteOffset != byteOffset)
        {
            throw new EcgFormatException(recordId, $"signals {index - 1} and {index} share file {fileName} but differ in byte offset");
        }

        return new WfdbSignalSpec
        {
            FileName = fileName,
            Format = format,
            SamplesPerFrame = spf,
            Skew = (int)((double)skewSamples / spf + 0.5),
            ByteOffset = byteOffset,
            Gain = gain,
            Baseline = baseline ?? adcZero,
            Units = units,
            AdcResolution = resolution,
            AdcZero = adcZero,
            InitialValue = initial,
            Checksum = checksum,
            BlockSize = blockSize,
            Description = description,
            Group = group,
        };
    }

    private readonly record struct Token(string Text, int Start);

    private static List<Token> Tokens(string line)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && (line[i] == ' ' || line[i] == '\t'))
            {
                i++;
            }

            if (i >= line.Length)
            {
                break;
            }

            var start = i;
            while (i < line.Length && line[i] != ' ' && line[i] != '\t')
            {
                i++;
            }

            tokens.Add(new Token(line[start..i], start));
        }

        return tokens;
    }

    private static int ParseInt(string text, string recordId, string what)
    {
        var value = ParseLong(text, recordId, what);
        if (value < int.MinValue || value > int.MaxValue)
        {
            throw new EcgFormatException(recordId, $"{what} '{text}' is out of range");
        }

        return (int)value;
    }

    private static long ParseLong(string text, string recordId, string what)
    {
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }

        throw new EcgFormatException(recordId, $"{what} '{Clip(text)}' is not an integer");
    }

    private static double ParseDouble(string text, string recordId, string what)
    {
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
        {
            return value;
        }

        throw new EcgFormatException(recordId, $"{what} '{Clip(text)}' is not a finite number");
    }

    private static TimeSpan ParseTime(string text, string recordId)
    {
        // [[HH:]MM:]SS[.sss]
        var parts = text.Split(':');
        if (parts.Length > 3)
        {
            throw BadBaseTime(recordId);
        }

        double seconds = 0;
        for (var i = 0; i < parts.Length; i++)
        {
            var isLast = i == parts.Length - 1;
            if (isLast)
            {
                if (!double.TryParse(parts[i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var s) || s >= 60)
                {
                    throw BadBaseTime(recordId);
                }

                seconds = (seconds * 60) + s;
            }
            else
            {
                if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v >= (i == 0 && parts.Length == 3 ? 24 : 60))
                {
                    throw BadBaseTime(recordId);
                }

                seconds = (seconds * 60) + v;
            }
        }

        return TimeSpan.FromSeconds(seconds);
    }

    private static DateOnly ParseDate(string text, string recordId)
    {
        if (DateOnly.TryParseExact(text, ["d/M/yyyy", "dd/MM/yyyy"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            return date;
        }

        throw new EcgFormatException(recordId, "base date is not DD/MM/YYYY");
    }

    // The recording's date and time are not quoted in errors: with the record they identify an exam.
    private static EcgFormatException BadBaseTime(string recordId) =>
        new(recordId, "base time is malformed (not [[HH:]MM:]SS[.sss])");

    private static string Clip(string text) => text.Length <= 40 ? text : text[..40] + "...";
}
