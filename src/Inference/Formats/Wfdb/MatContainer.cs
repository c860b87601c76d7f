using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Wfdb;

/// <summary>
/// Checks the MATLAB containers PhysioNet uses for WFDB signal files (Challenge records: a MATLAB v4 matrix
/// "val" of int16, signals x samples, whose data start at the header's byte offset, e.g. <c>16+24</c>;
/// MATLAB v5 files whose data start is given by the byte offset alone).
/// </summary>
internal static class MatContainer
{
    internal readonly record struct Result(string? Kind, long DataBytes);

    internal static Result Check(IRecordFileSource source, string fileName, WfdbSignalSpec spec, int rowsPerFrame, long fileLength, string recordId)
    {
        var (buffer, filled) = RecordFileReader.ReadRange(source, fileName, 0, 128, recordId);
        try
        {
            var head = buffer.AsSpan(0, filled);
            if (head.Length >= 10 && Encoding.ASCII.GetString(head[..10]) == "MATLAB 5.0")
            {
                if (spec.ByteOffset < 128)
                {
                    throw new EcgFormatException(recordId, $"{fileName} is a MATLAB v5 file but the header's byte offset {spec.ByteOffset} points into its 128-byte header");
                }

                return new Result("MATLAB v5", fileLength - spec.ByteOffset);
            }

            if (head.Length < 20)
            {
                if (fileName.EndsWith(".mat", StringComparison.OrdinalIgnoreCase))
                {
                    throw new EcgFormatException(recordId, $"{fileName} is too short to be a MATLAB file");
                }

                return new Result(null, fileLength - spec.ByteOffset);
            }

            var type = BinaryPrimitives.ReadInt32LittleEndian(head);
            var rows = BinaryPrimitives.ReadInt32LittleEndian(head[4..]);
            var cols = BinaryPrimitives.ReadInt32LittleEndian(head[8..]);
            var imaginary = BinaryPrimitives.ReadInt32LittleEndian(head[12..]);
            var nameLength = BinaryPrimitives.ReadInt32LittleEndian(head[16..]);
            var m = type / 1000;
            var o = type / 100 % 10;
            var p = type / 10 % 10;
            var t = type % 10;
            var isV4 = type >= 0 && type < 10000 && m == 0 && o == 0 && p <= 5 && t == 0 && rows >= 0 && cols >= 0 && imaginary is 0 or 1
                && nameLength is > 0 and < 64;
            if (!isV4)
            {
                if (fileName.EndsWith(".mat", StringComparison.OrdinalIgnoreCase))
                {
                    throw new EcgFormatException(recordId, $"{fileName} is neither a little-endian MATLAB v4 matrix nor a MATLAB v5 file");
                }

                return new Result(null, fileLength - spec.ByteOffset);
            }

            var dataStart = 20L + nameLength;
            if (spec.ByteOffset != dataStart)
            {
                throw new EcgFormatException(recordId, $"{fileName}: the header's byte offset {spec.ByteOffset} does not match the MATLAB v4 matrix, whose data start at byte {dataStart}");
            }

            var (elementBytes, expectedFormat) = p switch
            {
                0 => (8, -1),
                1 => (4, -1),
                2 => (4, 32),
                3 => (2, 16),
                4 => (2, 160),
                _ => (1, 80),
            };
            if (expectedFormat != spec.Format && !(p == 5 && spec.Format == 8))
            {
                throw new EcgFormatException(recordId, $"{fileName} holds a MATLAB v4 matrix of {MatType(p)} but the header says format {spec.Format}");
            }

            if (imaginary != 0)
            {
                throw new EcgFormatException(recordId, $"{fileName} holds a complex matrix");
            }

            if (rows != rowsPerFrame)
            {
                throw new EcgFormatException(recordId, $"{fileName} holds a {rows} x {cols} matrix but the header describes {rowsPerFrame} samples per frame");
            }

            var dataBytes = (long)rows * cols * elementBytes;
            if (dataBytes > fileLength - dataStart)
            {
                throw new EcgFormatException(recordId, $"{fileName} claims a {rows} x {cols} matrix ({dataBytes} bytes) but holds only {fileLength - dataStart} data bytes");
            }

            return new Result("MATLAB v4", dataBytes);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static string MatType(int p) => p switch
    {
        0 => "double",
        1 => "single",
        2 => "int32",
        3 => "int16",
        4 => "uint16",
        _ => "uint8",
    };
}
