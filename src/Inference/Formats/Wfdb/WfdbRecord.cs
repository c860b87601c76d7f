using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Wfdb;

/// <summary>How samples of signals with several samples per frame are returned.</summary>
public enum WfdbResolution
{
    /// <summary>One value per frame and signal: the mean of the frame's samples (WFDB's default <c>getvec</c> mode).</summary>
    Frame,

    /// <summary>As many values per frame as the signal with the most samples per frame; others repeat (zero-order hold).</summary>
    High,
}

/// <summary>
/// A WFDB record opened from an <see cref="IRecordFileSource"/>: its header, and reads of any sample range and
/// channel subset as digital (ADC) or physical values. Single- and multi-segment records (fixed or variable layout).
/// Not thread-safe (warnings accumulate on the instance); open one per use.
/// </summary>
public sealed class WfdbRecord
{
    /// <summary>The most samples (frames x channels) one read may return.</summary>
    public const long MaxSamplesPerRead = 1L << 26;

    private const long MaxHeaderBytes = 1 << 20;

    private readonly IRecordFileSource _source;
    private readonly List<string> _warnings = [];
    private readonly FileGroup[] _groups;
    private readonly WfdbHeader? _layout;

    private WfdbRecord(IRecordFileSource source, string recordId, WfdbHeader header, IReadOnlyList<WfdbSignalSpec> signals, FileGroup[] groups, long sampleCount, WfdbHeader? layout, string container)
    {
        _source = source;
        RecordId = recordId;
        Header = header;
        Signals = signals;
        _groups = groups;
        SampleCount = sampleCount;
        _layout = layout;
        Container = container;
    }

    public string RecordId { get; }

    public WfdbHeader Header { get; }

    public string RecordName => Header.RecordName;

    /// <summary>The record's signals (for a multi-segment record: the layout's signals, or the first segment's).</summary>
    public IReadOnlyList<WfdbSignalSpec> Signals { get; }

    /// <summary>Frames per signal.</summary>
    public long SampleCount { get; }

    /// <summary>Frames per second.</summary>
    public double SamplingFrequency => Header.SamplingFrequency;

    /// <summary>The largest samples-per-frame of any signal.</summary>
    public int MaxSamplesPerFrame => Signals.Count == 0 ? 1 : Signals.Max(s => s.SamplesPerFrame);

    /// <summary>"signal files", "MATLAB v4", "MATLAB v5" or "multi-segment (fixed|variable layout)".</summary>
    public string Container { get; }

    /// <summary>Signal formats as written in the header, e.g. "16", "212", "16+24".</summary>
    public IReadOnlyList<string> Formats =>
        Signals.Select(s => s.ByteOffset > 0 ? $"{s.Format}+{s.ByteOffset}" : s.Format.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Distinct().ToList();

    /// <summary>Problems that did not stop the read (checksum mismatches, precision loss between segments).</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    /// <summary>Opens a record by path: a header (<c>.hea</c>), a record name without extension, or a signal file beside its header.</summary>
    public static WfdbRecord Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full) ?? ".";
        var name = Path.GetFileName(full);
        if (name.EndsWith(".hea", StringComparison.OrdinalIgnoreCase))
        {
            name = name[..^4];
        }
        else if (!File.Exists(Path.Combine(directory, name + ".hea")) && Path.HasExtension(name)
            && File.Exists(Path.Combine(directory, Path.GetFileNameWithoutExtension(name) + ".hea")))
        {
            name = Path.GetFileNameWithoutExtension(name);
        }

        return Open(new DirectoryRecordFileSource(directory), name, path);
    }

    /// <summary>Opens record <paramref name="recordName"/> (its header is <c>recordName.hea</c>) from a file source.</summary>
    public static WfdbRecord Open(IRecordFileSource source, string recordName, string? recordId = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(recordName);
        recordId ??= recordName;
        var header = ReadHeader(source, recordName, recordId);
        if (header.IsMultiSegment)
        {
            return OpenMultiSegment(source, recordId, header);
        }

        if (header.SignalCount == 0)
        {
            throw new EcgFormatException(recordId, "record has no signals");
        }

        var groups = BuildGroups(source, header, recordId);
        long capacity = long.MaxValue;
        foreach (var g in groups)
        {
            capacity = Math.Min(capacity, g.CapacityFrames);
        }

        long sampleCount;
        if (header.SampleCount > 0)
        {
            sampleCount = header.SampleCount;
            foreach (var g in groups)
            {
                if (g.CapacityFrames < sampleCount)
                {
                    throw new EcgFormatException(recordId,
                        $"signal file {g.FileName} holds {g.CapacityFrames} frames but the header claims {sampleCount} (truncated file, or wrong length or format in the header)");
                }
            }
        }
        else
        {
            sampleCount = capacity == long.MaxValue ? 0 : capacity;
        }

        var container = groups.Select(g => g.Container).FirstOrDefault(c => c != "signal files") ?? "signal files";
        var record = new WfdbRecord(source, recordId, header, header.Signals, groups, sampleCount, null, container);
        if (header.RecordName != recordName)
        {
            record._warnings.Add($"the header names the record '{header.RecordName}' but is stored as '{recordName}.hea'");
        }

        return record;
    }

    /// <summary>Reads ADC values: per selected channel, one array of frames [from, to); invalid samples are <see cref="WfdbSignalFormats.InvalidSample"/>.</summary>
    public int[][] ReadDigital(long from = 0, long? to = null, IReadOnlyList<int>? channels = null, WfdbResolution resolution = WfdbResolution.Frame)
    {
        var (start, end, selected, factor) = CheckRange(from, to, channels, resolution);
        var result = new int[selected.Length][];
        for (var i = 0; i < selected.Length; i++)
        {
            result[i] = new int[(end - start) * factor];
        }

        if (Header.IsMultiSegment)
        {
            ReadSegments(start, end, selected, result, null);
        }
        else
        {
            ReadSingle(start, end, selected, resolution, result);
        }

        return result;
    }

    /// <summary>Reads physical values ((adu - baseline) / gain, in each signal's own units); NaN for invalid samples.</summary>
    public double[][] ReadPhysical(long from = 0, long? to = null, IReadOnlyList<int>? channels = null, WfdbResolution resolution = WfdbResolution.Frame)
    {
        var (start, end, selected, factor) = CheckRange(from, to, channels, resolution);
        var length = (int)((end - start) * factor);
        var physical = new double[selected.Length][];
        for (var i = 0; i < selected.Length; i++)
        {
            // A single-segment read writes every value below; segments may leave gaps that must read as zero.
            physical[i] = Header.IsMultiSegment ? new double[length] : GC.AllocateUninitializedArray<double>(length);
        }

        if (Header.IsMultiSegment)
        {
            var digital = new int[selected.Length][];
            for (var i = 0; i < selected.Length; i++)
            {
                digital[i] = new int[length];
            }

            ReadSegments(start, end, selected, digital, physical);
            return physical;
        }

        var scratch = new int[selected.Length][];
        try
        {
            for (var i = 0; i < selected.Length; i++)
            {
                scratch[i] = ArrayPool<int>.Shared.Rent(Math.Max(length, 1));
            }

            ReadSingle(start, end, selected, resolution, scratch);
            for (var i = 0; i < selected.Length; i++)
            {
                var spec = Signals[selected[i]];
                ToPhysical(scratch[i].AsSpan(0, length), physical[i], spec.Baseline, spec.EffectiveGain, 1.0);
            }
        }
        finally
        {
            foreach (var a in scratch)
            {
                if (a is not null)
                {
                    ArrayPool<int>.Shared.Return(a);
                }
            }
        }

        return physical;
    }

    /// <summary>
    /// The whole record as an <see cref="EcgSignal"/>: voltage signals converted to mV, other signals in their own
    /// units. When every signal has the same samples per frame k, the signal keeps all samples (rate k x frame rate);
    /// otherwise frames are averaged.
    /// </summary>
    public EcgSignal ToEcgSignal()
    {
        var spf = Signals.Select(s => s.SamplesPerFrame).Distinct().ToList();
        var resolution = spf.Count == 1 && !Header.IsMultiSegment ? WfdbResolution.High : WfdbResolution.Frame;
        var factor = resolution == WfdbResolution.High ? spf[0] : 1;
        var leads = ReadPhysical(0, null, null, resolution);
        for (var i = 0; i < leads.Length; i++)
        {
            var scale = Units.ToMillivolts(Signals[i].Units);
            if (scale is { } s && s != 1.0)
            {
                var lead = leads[i];
                for (var k = 0; k < lead.Length; k++)
                {
                    lead[k] *= s;
                }
            }
        }

        return new EcgSignal(RecordId, SamplingFrequency * factor, Signals.Select(s => s.Description).ToList(), leads)
        {
            Metadata = RecordMetadata.FromComments(Header.Comments),
        };
    }

    internal static void ToPhysical(ReadOnlySpan<int> digital, Span<double> physical, int baseline, double gain, double scale)
    {
        var k = 0;
        if (Avx2.IsSupported && digital.Length >= Vector256<double>.Count && physical.Length >= digital.Length)
        {
            // The same IEEE operations four samples at a time, so the values are identical to the scalar loop's.
            var b = Vector256.Create((double)baseline);
            var g = Vector256.Create(gain);
            var s = Vector256.Create(scale);
            var invalid = Vector128.Create(WfdbSignalFormats.InvalidSample);
            var nan = Vector256.Create(double.NaN);
            ref var source = ref MemoryMarshal.GetReference(digital);
            ref var destination = ref MemoryMarshal.GetReference(physical);
            for (; k <= digital.Length - Vector256<double>.Count; k += Vector256<double>.Count)
            {
                var v = Vector128.LoadUnsafe(ref source, (nuint)k);
                var x = (Avx.ConvertToVector256Double(v) - b) / g * s;
                var isInvalid = Avx2.ConvertToVector256Int64(Vector128.Equals(v, invalid)).AsDouble();
                Vector256.ConditionalSelect(isInvalid, nan, x).StoreUnsafe(ref destination, (nuint)k);
            }
        }

        for (; k < digital.Length; k++)
        {
            var v = digital[k];
            physical[k] = v == WfdbSignalFormats.InvalidSample ? double.NaN : (v - (double)baseline) / gain * scale;
        }
    }

    private static WfdbHeader ReadHeader(IRecordFileSource source, string recordName, string recordId)
    {
        var fileName = recordName + ".hea";
        WfdbHeader.ValidateFileName(fileName, recordId, allowNull: false);
        var bytes = RecordFileReader.ReadAll(source, fileName, MaxHeaderBytes, recordId);
        if (bytes.Length == 0)
        {
            throw new EcgFormatException(recordId, $"header {fileName} is empty");
        }

        return WfdbHeader.Parse(Encoding.Latin1.GetString(bytes), recordId);
    }

    private (long Start, long End, int[] Channels, int Factor) CheckRange(long from, long? to, IReadOnlyList<int>? channels, WfdbResolution resolution)
    {
        var end = to ?? SampleCount;
        if (from < 0 || end > SampleCount || from > end)
        {
            throw new EcgFormatException(RecordId, $"sample range [{from}, {end}) is outside the record's {SampleCount} samples");
        }

        var selected = channels?.ToArray() ?? Enumerable.Range(0, Signals.Count).ToArray();
        foreach (var c in selected)
        {
            if (c < 0 || c >= Signals.Count)
            {
                throw new EcgFormatException(RecordId, $"channel {c} does not exist (the record has {Signals.Count})");
            }
        }

        var factor = resolution == WfdbResolution.High ? MaxSamplesPerFrame : 1;
        if (resolution == WfdbResolution.High && Header.IsMultiSegment && factor > 1)
        {
            throw new EcgFormatException(RecordId, "high-resolution reads of multi-segment records are not supported");
        }

        if ((end - from) * factor * Math.Max(1, selected.Length) > MaxSamplesPerRead)
        {
            throw new EcgFormatException(RecordId, $"reading {end - from} frames of {selected.Length} channels exceeds the reader's limit of {MaxSamplesPerRead} samples");
        }

        return (from, end, selected, factor);
    }

    private void ReadSingle(long start, long end, int[] selected, WfdbResolution resolution, int[][] output)
    {
        var frames = (int)(end - start);
        if (frames == 0)
        {
            return;
        }

        var spfMax = MaxSamplesPerFrame;
        foreach (var group in _groups)
        {
            if (!selected.Any(c => Signals[c].Group == group.Index))
            {
                continue;
            }

            var maxSkew = group.Signals.Max(s => Signals[s].Skew);
            var decodeEnd = Math.Min(end + maxSkew, group.CapacityFrames);
            if (group.Format == 0)
            {
                decodeEnd = end + maxSkew;
            }

            var decodeFrames = (int)Math.Max(0, decodeEnd - start);
            var scratchLength = checked(decodeFrames * group.SamplesPerFrame);
            var scratch = ArrayPool<int>.Shared.Rent(Math.Max(1, scratchLength));
            try
            {
                var decoded = scratch.AsSpan(0, scratchLength);
                DecodeGroup(group, start, decodeFrames, decoded);
                if (start == 0 && decodeEnd >= SampleCount && SampleCount > 0)
                {
                    VerifyChecksums(group, decoded);
                }

                for (var i = 0; i < selected.Length; i++)
                {
                    var c = selected[i];
                    var spec = Signals[c];
                    if (spec.Group != group.Index)
                    {
                        continue;
                    }

                    Scatter(decoded, decodeFrames, group, c, spec, frames, resolution == WfdbResolution.High ? spfMax : 1, output[i]);
                }
            }
            finally
            {
                ArrayPool<int>.Shared.Return(scratch);
            }
        }
    }

    /// <summary>Copies one signal's samples out of the decoded frames, deskewing and averaging or repeating samples within frames.</summary>
    private void Scatter(ReadOnlySpan<int> decoded, int decodedFrames, FileGroup group, int channel, WfdbSignalSpec spec, int frames, int outPerFrame, int[] output)
    {
        var offset = group.OffsetInFrame[channel];
        var spf = spec.SamplesPerFrame;
        var stride = group.SamplesPerFrame;
        if (spf == 1)
        {
            // The common case: one sample per frame, a strided copy.
            var available = Math.Clamp(decodedFrames - spec.Skew, 0, frames);
            var index = (spec.Skew * stride) + offset;
            for (var t = 0; t < available; t++, index += stride)
            {
                output[t * outPerFrame] = decoded[index];
                for (var g = 1; g < outPerFrame; g++)
                {
                    output[(t * outPerFrame) + g] = decoded[index];
                }
            }

            output.AsSpan(available * outPerFrame, (frames - available) * outPerFrame).Fill(WfdbSignalFormats.InvalidSample);
            return;
        }

        for (var t = 0; t < frames; t++)
        {
            var f = t + spec.Skew;
            if (f >= decodedFrames)
            {
                output.AsSpan(t * outPerFrame, (frames - t) * outPerFrame).Fill(WfdbSignalFormats.InvalidSample);
                return;
            }

            var frame = decoded.Slice((f * stride) + offset, spf);
            if (outPerFrame == 1)
            {
                output[t] = spf == 1 ? frame[0] : MeanSample(frame);
            }
            else
            {
                for (var g = 0; g < outPerFrame; g++)
                {
                    output[(t * outPerFrame) + g] = frame[(int)((long)g * spf / outPerFrame)];
                }
            }
        }
    }

    /// <summary>
    /// WFDB's mean of a frame's samples, as the C library's <c>getvec</c> and wfdb-python return it: the sum divided by
    /// the samples per frame in integer arithmetic, so truncated toward zero (-2.5 gives -2, 2.5 gives 2); invalid if
    /// any sample is.
    /// </summary>
    private static int MeanSample(ReadOnlySpan<int> values)
    {
        long sum = 0;
        foreach (var v in values)
        {
            if (v == WfdbSignalFormats.InvalidSample)
            {
                return WfdbSignalFormats.InvalidSample;
            }

            sum += v;
        }

        return (int)(sum / values.Length);
    }

    private void DecodeGroup(FileGroup group, long startFrame, int frames, Span<int> dest)
    {
        if (frames == 0)
        {
            return;
        }

        if (group.Format == 0)
        {
            dest.Fill(WfdbSignalFormats.InvalidSample);
            return;
        }

        var stride = group.SamplesPerFrame;
        if (group.Format == 8)
        {
            DecodeFormat8(group, startFrame, frames, dest);
            return;
        }

        var firstSample = startFrame * stride;
        var (byteStart, groupFirstSample) = WfdbSignalFormats.GroupStart(group.Format, firstSample);
        var lastSample = firstSample + ((long)frames * stride);
        var byteEnd = WfdbSignalFormats.BytesThrough(group.Format, lastSample);
        var (buffer, filled) = RecordFileReader.ReadRange(_source, group.FileName, group.ByteOffset + byteStart, byteEnd - byteStart, RecordId);
        try
        {
            WfdbSignalFormats.Decode(group.Format, buffer.AsSpan(0, filled), (int)(firstSample - groupFirstSample), dest);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void DecodeFormat8(FileGroup group, long startFrame, int frames, Span<int> dest)
    {
        // First differences: every value depends on all earlier bytes, so decode from the start of the file.
        var stride = group.SamplesPerFrame;
        var totalBytes = (startFrame + frames) * stride;
        var (buffer, filled) = RecordFileReader.ReadRange(_source, group.FileName, group.ByteOffset, totalBytes, RecordId);
        try
        {
            var acc = new int[group.Signals.Length];
            var positionSignal = new int[stride];
            var p = 0;
            for (var s = 0; s < group.Signals.Length; s++)
            {
                var spec = Signals[group.Signals[s]];
                acc[s] = spec.InitialValue;
                for (var k = 0; k < spec.SamplesPerFrame; k++)
                {
                    positionSignal[p++] = s;
                }
            }

            var bytes = buffer.AsSpan(0, filled);
            var skip = startFrame * stride;
            for (long i = 0; i < totalBytes; i++)
            {
                var s = positionSignal[(int)(i % stride)];
                var delta = i < bytes.Length ? (sbyte)bytes[(int)i] : 0;
                acc[s] += delta;
                if (i >= skip)
                {
                    dest[(int)(i - skip)] = acc[s];
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void VerifyChecksums(FileGroup group, ReadOnlySpan<int> decoded)
    {
        if (group.Format == 0)
        {
            return;
        }

        var stride = group.SamplesPerFrame;
        var invalidRaw = WfdbSignalFormats.RawInvalidValue(group.Format) ?? 0;
        var columns = ColumnSums(decoded, stride, (int)SampleCount, invalidRaw);
        foreach (var c in group.Signals)
        {
            var spec = Signals[c];
            if (spec.Checksum is not { } expected)
            {
                continue;
            }

            var offset = group.OffsetInFrame[c];
            var sum = 0;
            for (var k = 0; k < spec.SamplesPerFrame; k++)
            {
                sum += columns[offset + k];
            }

            if ((sum & 0xFFFF) != (expected & 0xFFFF))
            {
                _warnings.Add($"signal {c} ({spec.Description}): checksum {(short)sum} does not match the header's {expected}");
            }
        }
    }

    /// <summary>
    /// The sum of each column of <paramref name="frames"/> frames of <paramref name="stride"/> samples, an invalid
    /// sample counted as its raw value. Only the low 16 bits make a WFDB checksum, so the sums may wrap.
    /// </summary>
    private static int[] ColumnSums(ReadOnlySpan<int> decoded, int stride, int frames, int invalidRaw)
    {
        var sums = new int[stride];
        var c = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            // Four columns at a time, walking the frames.
            var invalid = Vector128.Create(WfdbSignalFormats.InvalidSample);
            var raw = Vector128.Create(invalidRaw);
            ref var origin = ref MemoryMarshal.GetReference(decoded);
            for (; c + Vector128<int>.Count <= stride; c += Vector128<int>.Count)
            {
                var acc = Vector128<int>.Zero;
                for (int f = 0, index = c; f < frames; f++, index += stride)
                {
                    var v = Vector128.LoadUnsafe(ref origin, (nuint)index);
                    acc += Vector128.ConditionalSelect(Vector128.Equals(v, invalid), raw, v);
                }

                acc.CopyTo(sums.AsSpan(c));
            }
        }

        for (; c < stride; c++)
        {
            var sum = 0;
            for (int f = 0, index = c; f < frames; f++, index += stride)
            {
                var v = decoded[index];
                sum += v == WfdbSignalFormats.InvalidSample ? invalidRaw : v;
            }

            sums[c] = sum;
        }

        return sums;
    }

    private static FileGroup[] BuildGroups(IRecordFileSource source, WfdbHeader header, string recordId)
    {
        var groups = new List<FileGroup>();
        var offsets = new int[header.Signals.Count];
        for (var s = 0; s < header.Signals.Count;)
        {
            var spec = header.Signals[s];
            var members = new List<int>();
            var stride = 0;
            while (s < header.Signals.Count && header.Signals[s].Group == spec.Group)
            {
                offsets[s] = stride;
                stride += header.Signals[s].SamplesPerFrame;
                members.Add(s);
                s++;
            }

            long capacity;
            var container = "signal files";
            if (spec.Format == 0)
            {
                capacity = long.MaxValue;
            }
            else
            {
                if (spec.FileName == "~")
                {
                    throw new EcgFormatException(recordId, $"signal {members[0]} has no signal file but format {spec.Format}");
                }

                if (!source.Exists(spec.FileName))
                {
                    throw new EcgFormatException(recordId, $"signal file {spec.FileName} is missing");
                }

                var length = RecordFileReader.LengthOf(source, spec.FileName, recordId);
                if (length < spec.ByteOffset)
                {
                    throw new EcgFormatException(recordId, $"signal file {spec.FileName} has {length} bytes, fewer than its byte offset {spec.ByteOffset}");
                }

                var dataBytes = length - spec.ByteOffset;
                if (spec.FileName.EndsWith(".mat", StringComparison.OrdinalIgnoreCase))
                {
                    var mat = MatContainer.Check(source, spec.FileName, spec, stride, length, recordId);
                    if (mat.Kind is not null)
                    {
                        container = mat.Kind;
                        dataBytes = Math.Min(dataBytes, mat.DataBytes);
                    }
                }

                capacity = WfdbSignalFormats.SampleCapacity(spec.Format, dataBytes) / stride;
            }

            groups.Add(new FileGroup(groups.Count, spec.FileName, spec.Format, spec.ByteOffset, stride, [.. members], offsets, capacity, container));
        }

        return [.. groups];
    }

    private static WfdbRecord OpenMultiSegment(IRecordFileSource source, string recordId, WfdbHeader header)
    {
        var segments = header.Segments!;
        WfdbHeader? layout = null;
        IReadOnlyList<WfdbSignalSpec>? signals = null;
        var first = 0;
        if (segments[0].SampleCount == 0 && !segments[0].IsNull)
        {
            layout = ReadHeader(source, segments[0].RecordName, recordId);
            if (layout.IsMultiSegment)
            {
                throw new EcgFormatException(recordId, $"layout segment {segments[0].RecordName} is itself multi-segment");
            }

            signals = layout.Signals;
            first = 1;
        }
        else
        {
            foreach (var segment in segments)
            {
                if (!segment.IsNull && segment.SampleCount > 0)
                {
                    var h = ReadHeader(source, segment.RecordName, recordId);
                    if (h.IsMultiSegment)
                    {
                        throw new EcgFormatException(recordId, $"segment {segment.RecordName} is itself multi-segment");
                    }

                    signals = h.Signals;
                    break;
                }
            }
        }

        if (signals is null || signals.Count == 0)
        {
            throw new EcgFormatException(recordId, "multi-segment record has no signals");
        }

        long total = 0;
        for (var i = first; i < segments.Count; i++)
        {
            if (segments[i].SampleCount > MaxSamplesPerRead)
            {
                throw new EcgFormatException(recordId, $"segment {segments[i].RecordName} claims {segments[i].SampleCount} frames, more than the reader's limit of {MaxSamplesPerRead}");
            }

            total += segments[i].SampleCount;
        }

        var sampleCount = header.SampleCount > 0 ? Math.Min(header.SampleCount, total) : total;
        var container = layout is null ? "multi-segment (fixed layout)" : "multi-segment (variable layout)";
        return new WfdbRecord(source, recordId, header, signals, [], sampleCount, layout, container);
    }

    /// <summary>Reads frames [start, end) of a multi-segment record, segment by segment.</summary>
    private void ReadSegments(long start, long end, int[] selected, int[][] digital, double[][]? physical)
    {
        var segments = Header.Segments!;
        long segmentStart = 0;
        for (var i = _layout is null ? 0 : 1; i < segments.Count && segmentStart < end; i++)
        {
            var segment = segments[i];
            var segmentEnd = segmentStart + segment.SampleCount;
            var from = Math.Max(start, segmentStart);
            var to = Math.Min(end, segmentEnd);
            if (from < to)
            {
                var outOffset = (int)(from - start);
                var count = (int)(to - from);
                if (segment.IsNull)
                {
                    FillInvalid(selected.Length, outOffset, count, digital, physical);
                }
                else
                {
                    ReadOneSegment(segment, from - segmentStart, to - segmentStart, selected, outOffset, digital, physical);
                }
            }

            segmentStart = segmentEnd;
        }
    }

    private static void FillInvalid(int channels, int offset, int count, int[][] digital, double[][]? physical)
    {
        for (var c = 0; c < channels; c++)
        {
            digital[c].AsSpan(offset, count).Fill(WfdbSignalFormats.InvalidSample);
            physical?[c].AsSpan(offset, count).Fill(double.NaN);
        }
    }

    private void ReadOneSegment(WfdbSegmentSpec segment, long from, long to, int[] selected, int outOffset, int[][] digital, double[][]? physical)
    {
        var record = Open(_source, segment.RecordName, RecordId);
        if (record.Header.IsMultiSegment)
        {
            throw new EcgFormatException(RecordId, $"segment {segment.RecordName} is itself multi-segment");
        }

        if (Math.Abs(record.SamplingFrequency - SamplingFrequency) > 1e-9 * SamplingFrequency)
        {
            throw new EcgFormatException(RecordId, $"segment {segment.RecordName} is sampled at {record.SamplingFrequency} Hz, the record at {SamplingFrequency} Hz");
        }

        if (record.SampleCount < to)
        {
            throw new EcgFormatException(RecordId, $"segment {segment.RecordName} holds {record.SampleCount} frames but the master header claims {segment.SampleCount}");
        }

        // Which of the segment's signals feeds each selected output channel.
        var sources = new int[selected.Length];
        for (var i = 0; i < selected.Length; i++)
        {
            var c = selected[i];
            if (_layout is null)
            {
                sources[i] = c < record.Signals.Count ? c : -1;
            }
            else
            {
                sources[i] = -1;
                for (var s = 0; s < record.Signals.Count; s++)
                {
                    if (record.Signals[s].Description == Signals[c].Description)
                    {
                        sources[i] = s;
                        break;
                    }
                }
            }
        }

        var wanted = sources.Where(s => s >= 0).Distinct().ToArray();
        var values = wanted.Length == 0 ? [] : record.ReadDigital(from, to, wanted);
        _warnings.AddRange(record.Warnings.Select(w => $"segment {segment.RecordName}: {w}"));
        var count = (int)(to - from);
        for (var i = 0; i < selected.Length; i++)
        {
            var target = digital[i].AsSpan(outOffset, count);
            if (sources[i] < 0)
            {
                target.Fill(WfdbSignalFormats.InvalidSample);
                physical?[i].AsSpan(outOffset, count).Fill(double.NaN);
                continue;
            }

            var segmentSpec = record.Signals[sources[i]];
            var layoutSpec = Signals[selected[i]];
            var source = values[Array.IndexOf(wanted, sources[i])];
            if (physical is not null)
            {
                // Physical values come from the segment's own calibration (no loss of precision), in the layout's units.
                var unitScale = Units.ToMillivolts(segmentSpec.Units) is { } from0 && Units.ToMillivolts(layoutSpec.Units) is { } to0 ? from0 / to0 : 1.0;
                ToPhysical(source, physical[i].AsSpan(outOffset, count), segmentSpec.Baseline, segmentSpec.EffectiveGain, unitScale);
            }

            if (_layout is null || (segmentSpec.EffectiveGain == layoutSpec.EffectiveGain && segmentSpec.Baseline == layoutSpec.Baseline))
            {
                source.AsSpan().CopyTo(target);
            }
            else
            {
                // Rescale to the layout's gain and baseline, rounding like WFDB's signal map.
                var scale = layoutSpec.EffectiveGain / segmentSpec.EffectiveGain;
                var offset = layoutSpec.Baseline - (scale * segmentSpec.Baseline) + 0.5;
                for (var k = 0; k < count; k++)
                {
                    var v = source[k];
                    target[k] = v == WfdbSignalFormats.InvalidSample ? v : (int)Math.Floor((v * scale) + offset);
                }
            }
        }
    }

    private sealed class FileGroup(int index, string fileName, int format, long byteOffset, int samplesPerFrame, int[] signals, int[] offsetInFrame, long capacityFrames, string container)
    {
        public int Index { get; } = index;

        public string FileName { get; } = fileName;

        public int Format { get; } = format;

        public long ByteOffset { get; } = byteOffset;

        /// <summary>Samples per frame of all signals in this file together.</summary>
        public int SamplesPerFrame { get; } = samplesPerFrame;

        public int[] Signals { get; } = signals;

        /// <summary>Indexed by record signal number: the signal's first sample within a frame of this file.</summary>
        public int[] OffsetInFrame { get; } = offsetInFrame;

        public long CapacityFrames { get; } = capacityFrames;

        public string Container { get; } = container;
    }
}
