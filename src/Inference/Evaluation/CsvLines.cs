using System.Text;

namespace HubertEcg.Inference.Evaluation;

/// <summary>A problem with an input file, naming the file and the line (1-based) where it is.</summary>
public sealed class EvaluationInputException(string message) : FormatException(message)
{
    public static EvaluationInputException At(string file, long line, string problem) => new($"{file} line {line}: {problem}");

    public static EvaluationInputException In(string file, string problem) => new($"{file}: {problem}");
}

/// <summary>
/// Reads a CSV file a line at a time (RFC 4180 fields: a field may be quoted with <c>"</c>, a quote inside doubled;
/// a quoted field may not span lines). The file is UTF-8; a UTF-8 byte order mark is skipped and CRLF line ends are
/// read like LF ones (so neither ends up in the first column's name or the last value); a UTF-16 file, invalid UTF-8
/// or a carriage return inside a line is an error naming the line.
/// </summary>
public sealed class CsvLines : IDisposable
{
    private readonly StreamReader reader;
    private readonly string name;
    private readonly char[] buffer = new char[1 << 16];
    private int position;
    private int filled;

    public CsvLines(string path, string? displayName = null)
    {
        name = displayName ?? Path.GetFileName(path);
        Stream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw EvaluationInputException.In(name, $"cannot be read: {e.Message}");
        }

        var bom = new byte[3];
        var read = stream.ReadAtLeast(bom, 3, throwOnEndOfStream: false);
        // A UTF-8 byte order mark (as spreadsheet programs write) is skipped, not read into the first column's name.
        var skip = read == 3 && bom[0] == 0xEF && bom[1] == 0xBB && bom[2] == 0xBF ? 3 : 0;
        if (read >= 2 && ((bom[0] == 0xFF && bom[1] == 0xFE) || (bom[0] == 0xFE && bom[1] == 0xFF)))
        {
            stream.Dispose();
            throw EvaluationInputException.At(name, 1, "the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8");
        }

        stream.Position = skip;
        reader = new StreamReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: false, 1 << 16);
    }

    public string Name => name;

    /// <summary>The number of the line last returned (1-based).</summary>
    public long LineNumber { get; private set; }

    /// <summary>The next line without its line end (LF), or null at the end of the file.</summary>
    public string? Next()
    {
        // Lines end with LF or CRLF. StreamReader.ReadLine would also end a line at a lone CR, which would shift every
        // line number after it; here a CR elsewhere than before LF is an error naming its line.
        var line = new StringBuilder();
        while (true)
        {
            if (position == filled)
            {
                try
                {
                    filled = reader.Read(buffer, 0, buffer.Length);
                }
                catch (DecoderFallbackException)
                {
                    throw EvaluationInputException.At(name, LineNumber + 1, "is not valid UTF-8");
                }

                position = 0;
                if (filled == 0)
                {
                    if (line.Length == 0)
                    {
                        return null;
                    }

                    break;
                }
            }

            var span = buffer.AsSpan(position, filled - position);
            var lf = span.IndexOf('\n');
            if (lf >= 0)
            {
                line.Append(span[..lf]);
                position += lf + 1;
                break;
            }

            line.Append(span);
            position = filled;
        }

        LineNumber++;
        if (line.Length > 0 && line[^1] == '\r')
        {
            line.Length--;
        }

        var text = line.ToString();
        if (text.Contains('\r', StringComparison.Ordinal))
        {
            throw EvaluationInputException.At(name, LineNumber, "contains a carriage return (CR) inside the line; lines must end with LF or CRLF");
        }

        return text;
    }

    /// <summary>Splits a line into its fields, unquoting quoted ones.</summary>
    public static List<string> Split(string line, string file, long lineNumber)
    {
        var fields = new List<string>();
        var i = 0;
        while (true)
        {
            if (i < line.Length && line[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw EvaluationInputException.At(file, lineNumber, "a quoted field is not closed on its line");
                    }

                    if (line[i] == '"')
                    {
                        if (i + 1 < line.Length && line[i + 1] == '"')
                        {
                            sb.Append('"');
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    sb.Append(line[i]);
                    i++;
                }

                fields.Add(sb.ToString());
                if (i == line.Length)
                {
                    return fields;
                }

                if (line[i] != ',')
                {
                    throw EvaluationInputException.At(file, lineNumber, $"unexpected character after a quoted field at column {i + 1}");
                }

                i++;
                continue;
            }

            var comma = line.IndexOf(',', i);
            var stop = comma < 0 ? line.Length : comma;
            var field = line[i..stop];
            if (field.Contains('"', StringComparison.Ordinal))
            {
                throw EvaluationInputException.At(file, lineNumber, $"a quote inside an unquoted field ('{field}'); quote the whole field");
            }

            fields.Add(field);
            if (comma < 0)
            {
                return fields;
            }

            i = comma + 1;
        }
    }

    /// <summary>
    /// The field ranges of a line without quotes (check with <c>line.Contains('"')</c> first): the fast path for wide
    /// numeric rows. Returns the number of fields; only the first <c>ranges.Length</c> are written.
    /// </summary>
    public static int SplitUnquoted(string line, Span<Range> ranges)
    {
        var count = 0;
        var start = 0;
        while (true)
        {
            var next = line.IndexOf(',', start);
            var stop = next < 0 ? line.Length : next;
            if (count < ranges.Length)
            {
                ranges[count] = start..stop;
            }

            count++;
            if (next < 0)
            {
                return count;
            }

            start = next + 1;
        }
    }

    public void Dispose() => reader.Dispose();
}
