using Npgsql;

namespace HubertEcg.Storage;

/// <summary>Reading query results by column name (never by position).</summary>
internal static class Rows
{
    /// <summary>Every row <paramref name="command"/> returns, each read by <paramref name="read"/>.</summary>
    public static async Task<List<T>> ReadAllAsync<T>(this NpgsqlCommand command, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(read(reader));
        }

        return rows;
    }

    /// <summary>The first row <paramref name="command"/> returns, read by <paramref name="read"/>; null when there is none.</summary>
    public static async Task<T?> ReadFirstAsync<T>(this NpgsqlCommand command, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
        where T : class
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? read(reader) : null;
    }

    /// <summary>The value of <paramref name="column"/> in the current row; null (or the default) when it is SQL null.</summary>
    public static T Field<T>(this NpgsqlDataReader reader, string column)
    {
        var ordinal = reader.GetOrdinal(column);
        return reader.IsDBNull(ordinal) ? default! : reader.GetFieldValue<T>(ordinal);
    }

    /// <summary>A timestamp parameter value: UTC, or null.</summary>
    public static object Utc(DateTime? value) => value is { } v ? DateTime.SpecifyKind(v, DateTimeKind.Utc) : DBNull.Value;

    /// <summary>True when the query returned a column of that name.</summary>
    public static bool HasColumn(this NpgsqlDataReader reader, string column)
    {
        for (var i = 0; i < reader.FieldCount; i++)
        {
            if (string.Equals(reader.GetName(i), column, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
