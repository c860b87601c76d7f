using HubertEcg.Inference.Evaluation;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Client.Evaluation;

/// <summary>A threshold set as listed.</summary>
public sealed record ThresholdSetRow(
    Guid SetId, string ModelId, string Name, int Version, string Rule, bool Active, int Labels, int WithThreshold,
    string ScoresSource, string LabelsSha256, int CohortSize, DateTime CreatedAt, DateTime? ActivatedAt);

/// <summary>Evaluations and threshold sets in Postgres (<c>infra/sql/0020_evaluations.sql</c>).</summary>
public sealed class EvaluationStore(NpgsqlDataSource dataSource)
{
    /// <summary>Stores an evaluation and its per-label rows in one transaction; returns its id.</summary>
    public async Task<Guid> SaveEvaluationAsync(
        ScoreTable scores, Guid? runId, LabelSet labels, string labelsFile, EvaluationResult result, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using (var cmd = new NpgsqlCommand(
            "insert into evaluations (evaluation_id, model_id, run_id, scores_source, labels_file, labels_sha256, label_layout, " +
            "cohort_size, scores_only, labels_only, bootstrap, bootstrap_seed) " +
            "values (@id, (select model_id from models where model_id = @model), @run, @source, @file, @sha, @layout, @cohort, @scoresOnly, @labelsOnly, @bootstrap, @seed)",
            connection,
            tx))
        {
            cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = id });
            cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = (object?)scores.ModelId ?? DBNull.Value });
            cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId is { } r ? r : DBNull.Value });
            cmd.Parameters.Add(new NpgsqlParameter("source", NpgsqlDbType.Text) { Value = scores.Source });
            cmd.Parameters.Add(new NpgsqlParameter("file", NpgsqlDbType.Text) { Value = labelsFile });
            cmd.Parameters.Add(new NpgsqlParameter("sha", NpgsqlDbType.Text) { Value = labels.Sha256 });
            cmd.Parameters.Add(new NpgsqlParameter("layout", NpgsqlDbType.Text) { Value = labels.Layout == LabelLayout.Long ? "long" : "wide" });
            cmd.Parameters.Add(new NpgsqlParameter("cohort", NpgsqlDbType.Integer) { Value = result.Matched });
            cmd.Parameters.Add(new NpgsqlParameter("scoresOnly", NpgsqlDbType.Integer) { Value = result.ScoresOnly });
            cmd.Parameters.Add(new NpgsqlParameter("labelsOnly", NpgsqlDbType.Integer) { Value = result.LabelsOnly });
            cmd.Parameters.Add(new NpgsqlParameter("bootstrap", NpgsqlDbType.Integer) { Value = result.Bootstrap });
            cmd.Parameters.Add(new NpgsqlParameter("seed", NpgsqlDbType.Bigint) { Value = result.Bootstrap > 0 ? (long)result.Seed : DBNull.Value });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var writer = await connection.BeginBinaryImportAsync(
            "copy evaluation_labels (evaluation_id, position, label_code, positives, negatives, auroc, auprc, sensitivity_at_05, " +
            "specificity_at_05, ppv_at_05, npv_at_05, f1_at_05, youden_threshold, youden_sensitivity, youden_specificity, " +
            "auroc_lo, auroc_hi, auprc_lo, auprc_hi) from stdin (format binary)",
            cancellationToken))
        {
            foreach (var m in result.Labels)
            {
                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync(id, NpgsqlDbType.Uuid, cancellationToken);
                await writer.WriteAsync(scores.LabelIndex(m.Code), NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(m.Code, NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(m.Positives, NpgsqlDbType.Bigint, cancellationToken);
                await writer.WriteAsync(m.Negatives, NpgsqlDbType.Bigint, cancellationToken);
                foreach (var v in new[] { m.Auroc, m.Auprc, m.SensitivityAtHalf, m.SpecificityAtHalf, m.PpvAtHalf, m.NpvAtHalf, m.F1AtHalf })
                {
                    await WriteDoubleAsync(writer, v, cancellationToken);
                }

                if (m.YoudenThreshold is { } t)
                {
                    await writer.WriteAsync(t, NpgsqlDbType.Real, cancellationToken);
                }
                else
                {
                    await writer.WriteNullAsync(cancellationToken);
                }

                foreach (var v in new[] { m.YoudenSensitivity, m.YoudenSpecificity, m.AurocInterval?.Lo, m.AurocInterval?.Hi, m.AuprcInterval?.Lo, m.AuprcInterval?.Hi })
                {
                    await WriteDoubleAsync(writer, v, cancellationToken);
                }
            }

            await writer.CompleteAsync(cancellationToken);
        }

        // Each label's bounded curve (infra/sql/0023_evaluation_curves.sql), for the dashboard's evaluation page.
        await using (var writer = await connection.BeginBinaryImportAsync(
            "copy evaluation_curves (evaluation_id, position, thresholds, tpr, fpr, precision) from stdin (format binary)",
            cancellationToken))
        {
            foreach (var m in result.Labels)
            {
                if (m.Curve is not { } curve)
                {
                    continue;
                }

                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync(id, NpgsqlDbType.Uuid, cancellationToken);
                await writer.WriteAsync(scores.LabelIndex(m.Code), NpgsqlDbType.Integer, cancellationToken);
                foreach (var values in new[] { curve.Thresholds, curve.Tpr, curve.Fpr, curve.Precision })
                {
                    await writer.WriteAsync(values, NpgsqlDbType.Array | NpgsqlDbType.Real, cancellationToken);
                }
            }

            await writer.CompleteAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return id;
    }

    private static async Task WriteDoubleAsync(NpgsqlBinaryImporter writer, double? value, CancellationToken cancellationToken)
    {
        if (value is { } v)
        {
            await writer.WriteAsync(v, NpgsqlDbType.Double, cancellationToken);
        }
        else
        {
            await writer.WriteNullAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Stores a new threshold set for a model: version 1 of a new name, or the next version of an existing one. Label
    /// codes are placed by the model's label order. The set is not active until activated.
    /// </summary>
    public async Task<(Guid SetId, int Version)> CreateSetAsync(
        string modelId, string name, ThresholdRule rule, string scoresSource, string labelsFile, string labelsSha256, int cohortSize,
        IReadOnlyList<(string Code, float? Threshold)> thresholds, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        string[] modelCodes;
        await using (var cmd = new NpgsqlCommand("select label_codes from models where model_id = @model", connection, tx))
        {
            cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = modelId });
            modelCodes = await cmd.ExecuteScalarAsync(cancellationToken) as string[]
                ?? throw new ArgumentException($"model {modelId} is not registered (a run registers its model)");
        }

        var positions = new int[thresholds.Count];
        for (var i = 0; i < thresholds.Count; i++)
        {
            positions[i] = Array.IndexOf(modelCodes, thresholds[i].Code);
            if (positions[i] < 0)
            {
                throw new ArgumentException($"label {thresholds[i].Code} is not a label of model {modelId}");
            }
        }

        // Versions are numbered per (model, name); the lock orders concurrent fits of one set (writers of scores do not take it).
        await using (var cmd = new NpgsqlCommand("lock table threshold_sets in share row exclusive mode", connection, tx))
        {
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        var id = Guid.NewGuid();
        int version;
        await using (var cmd = new NpgsqlCommand(
            "insert into threshold_sets (set_id, model_id, name, version, rule, scores_source, labels_file, labels_sha256, cohort_size) " +
            "select @id, @model, @name, coalesce(max(version), 0) + 1, @rule, @source, @file, @sha, @cohort " +
            "from threshold_sets where model_id = @model and name = @name returning version",
            connection,
            tx))
        {
            cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = id });
            cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = modelId });
            cmd.Parameters.Add(new NpgsqlParameter("name", NpgsqlDbType.Text) { Value = name });
            cmd.Parameters.Add(new NpgsqlParameter("rule", NpgsqlDbType.Text) { Value = rule.ToString() });
            cmd.Parameters.Add(new NpgsqlParameter("source", NpgsqlDbType.Text) { Value = scoresSource });
            cmd.Parameters.Add(new NpgsqlParameter("file", NpgsqlDbType.Text) { Value = labelsFile });
            cmd.Parameters.Add(new NpgsqlParameter("sha", NpgsqlDbType.Text) { Value = labelsSha256 });
            cmd.Parameters.Add(new NpgsqlParameter("cohort", NpgsqlDbType.Integer) { Value = cohortSize });
            version = (int)(await cmd.ExecuteScalarAsync(cancellationToken))!;
        }

        await using (var cmd = new NpgsqlCommand(
            "insert into threshold_set_labels (set_id, position, threshold) select @id, p, t from unnest(@positions, @thresholds) as x (p, t)",
            connection,
            tx))
        {
            cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = id });
            cmd.Parameters.Add(new NpgsqlParameter("positions", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = positions });
            cmd.Parameters.Add(new NpgsqlParameter("thresholds", NpgsqlDbType.Array | NpgsqlDbType.Real)
            {
                Value = thresholds.Select(t => t.Threshold).ToArray(),
            });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return (id, version);
    }

    public async Task<IReadOnlyList<ThresholdSetRow>> ListSetsAsync(string? modelId, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand(
            "select s.set_id, s.model_id, s.name, s.version, s.rule, s.active, " +
            "(select count(*)::integer from threshold_set_labels l where l.set_id = s.set_id), " +
            "(select count(*)::integer from threshold_set_labels l where l.set_id = s.set_id and l.threshold is not null), " +
            "s.scores_source, s.labels_sha256, s.cohort_size, s.created_at, s.activated_at " +
            "from threshold_sets s where @model::text is null or s.model_id = @model order by s.model_id, s.name, s.version");
        cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = (object?)modelId ?? DBNull.Value });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var rows = new List<ThresholdSetRow>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new ThresholdSetRow(
                reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3), reader.GetString(4), reader.GetBoolean(5),
                reader.GetInt32(6), reader.GetInt32(7), reader.GetString(8), reader.GetString(9), reader.GetInt32(10),
                reader.GetDateTime(11), reader.IsDBNull(12) ? null : reader.GetDateTime(12)));
        }

        return rows;
    }

    /// <summary>
    /// Finds one set: by id, or by name (and model when several models have a set of that name), its latest version
    /// unless one is given.
    /// </summary>
    public async Task<ThresholdSetRow> ResolveSetAsync(string nameOrId, string? modelId, int? version, CancellationToken cancellationToken)
    {
        var all = await ListSetsAsync(modelId, cancellationToken);
        if (Guid.TryParse(nameOrId, out var id))
        {
            return all.FirstOrDefault(s => s.SetId == id) ?? throw new ArgumentException($"threshold set {id} does not exist");
        }

        var named = all.Where(s => s.Name == nameOrId).ToList();
        if (named.Count == 0)
        {
            throw new ArgumentException($"no threshold set named '{nameOrId}'{(modelId is null ? "" : $" for model {modelId}")}");
        }

        var models = named.Select(s => s.ModelId).Distinct(StringComparer.Ordinal).ToList();
        if (models.Count > 1)
        {
            throw new ArgumentException($"threshold sets named '{nameOrId}' exist for several models ({string.Join(", ", models)}); give --model");
        }

        if (version is { } v)
        {
            return named.FirstOrDefault(s => s.Version == v) ?? throw new ArgumentException($"threshold set '{nameOrId}' has no version {v}");
        }

        return named.MaxBy(s => s.Version)!;
    }

    /// <summary>Makes the set its model's active one; returns the label positions whose effective threshold changed (recounted).</summary>
    public async Task<int[]> ActivateAsync(Guid setId, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("select threshold_set_activate(@id)");
        cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = setId });
        return (int[])(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>A set's labels in the model's order: code and threshold (null: the rule could not be met).</summary>
    public async Task<IReadOnlyList<(int Position, string Code, float? Threshold)>> SetLabelsAsync(Guid setId, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand(
            "select l.position, m.label_codes[l.position + 1], l.threshold from threshold_set_labels l " +
            "join threshold_sets s on s.set_id = l.set_id join models m on m.model_id = s.model_id " +
            "where l.set_id = @id order by l.position");
        cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = setId });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var rows = new List<(int, string, float?)>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add((reader.GetInt32(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetFloat(2)));
        }

        return rows;
    }
}
