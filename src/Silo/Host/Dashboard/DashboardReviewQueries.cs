using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Silo.Dashboard;

/// <summary>
/// The reads of the evaluation and review pages: stored evaluations (<c>infra/sql/0020_evaluations.sql</c>) and their
/// curves (<c>0023_evaluation_curves.sql</c>), a run's flagged records for a label, and one record's score row.
/// Thresholds are each model's effective ones (<c>dashboard_model_label_thresholds</c>: its active set, else the
/// global ones); an evaluation without a model counts with the global ones (<c>dashboard_label_thresholds</c>).
/// </summary>
public sealed partial class DashboardQueries
{
    private const string EvaluationColumns =
        "e.evaluation_id, e.model_id, e.run_id, r.name as run_name, e.scores_source, e.labels_file, e.labels_sha256, e.label_layout, " +
        "e.cohort_size, e.scores_only, e.labels_only, e.bootstrap, e.bootstrap_seed, e.created_at, " +
        "(select count(*)::integer from evaluation_labels l where l.evaluation_id = e.evaluation_id) as labels, " +
        "(select avg(l.auroc) from evaluation_labels l where l.evaluation_id = e.evaluation_id) as mean_auroc, " +
        "(select avg(l.auprc) from evaluation_labels l where l.evaluation_id = e.evaluation_id) as mean_auprc " +
        "from evaluations e left join runs r on r.run_id = e.run_id";

    // The threshold a label of an evaluation is marked at: its model's active set's, else the global one.
    private const string ThresholdJoins =
        "left join dashboard_model_label_thresholds mt on mt.model_id = e.model_id and mt.code = l.label_code " +
        "left join dashboard_label_thresholds gt on gt.code = l.label_code ";

    private const string ThresholdColumns =
        "coalesce(mt.threshold, gt.threshold) as threshold, coalesce(mt.inclusive, false) as threshold_inclusive, " +
        "mt.set_name as threshold_set_name, mt.set_version as threshold_set_version";

    /// <summary>The newest evaluations first.</summary>
    public Task<IReadOnlyList<Row>> EvaluationsAsync(int limit, CancellationToken cancellationToken) =>
        RowsAsync(
            $"select {EvaluationColumns} order by e.created_at desc, e.evaluation_id limit @limit",
            cancellationToken,
            new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = limit });

    public async Task<Row?> EvaluationAsync(Guid evaluationId, CancellationToken cancellationToken) =>
        (await RowsAsync($"select {EvaluationColumns} where e.evaluation_id = @evaluation", cancellationToken, Evaluation(evaluationId)))
        .SingleOrDefault();

    /// <summary>Every label of an evaluation in the scores' label order, with the threshold the page marks and whether it has a curve.</summary>
    public Task<IReadOnlyList<Row>> EvaluationLabelsAsync(Guid evaluationId, CancellationToken cancellationToken) =>
        RowsAsync(
            "select l.position, l.label_code as code, lb.name, lb.label_group, l.positives, l.negatives, " +
            "l.auroc, l.auroc_lo, l.auroc_hi, l.auprc, l.auprc_lo, l.auprc_hi, " +
            "l.sensitivity_at_05, l.specificity_at_05, l.ppv_at_05, l.npv_at_05, l.f1_at_05, " +
            "l.youden_threshold, l.youden_sensitivity, l.youden_specificity, " +
            $"{ThresholdColumns}, c.evaluation_id is not null as has_curve " +
            "from evaluation_labels l join evaluations e on e.evaluation_id = l.evaluation_id " +
            "left join labels lb on lb.code = l.label_code " +
            ThresholdJoins +
            "left join evaluation_curves c on c.evaluation_id = l.evaluation_id and c.position = l.position " +
            "where l.evaluation_id = @evaluation order by l.position",
            cancellationToken,
            Evaluation(evaluationId));

    /// <summary>One label of an evaluation with its curve points (null arrays when it has none), or null when the evaluation has no such label.</summary>
    public async Task<Row?> EvaluationCurveAsync(Guid evaluationId, string code, CancellationToken cancellationToken) =>
        (await RowsAsync(
            "select l.label_code as code, lb.name, l.positives, l.negatives, l.auroc, l.auprc, " +
            $"{ThresholdColumns}, c.thresholds, c.tpr, c.fpr, c.precision " +
            "from evaluation_labels l join evaluations e on e.evaluation_id = l.evaluation_id " +
            "left join labels lb on lb.code = l.label_code " +
            ThresholdJoins +
            "left join evaluation_curves c on c.evaluation_id = l.evaluation_id and c.position = l.position " +
            "where l.evaluation_id = @evaluation and l.label_code = @code",
            cancellationToken,
            Evaluation(evaluationId),
            new NpgsqlParameter("code", NpgsqlDbType.Text) { Value = code }))
        .SingleOrDefault();

    /// <summary>A label of a run's model with its effective threshold and the run's count at or above it; null when the model has no such label.</summary>
    public async Task<Row?> RunLabelAsync(Guid runId, string code, CancellationToken cancellationToken) =>
        (await RowsAsync(
            "select code, name, label_group, threshold, threshold_inclusive, threshold_is_default, threshold_set_name, threshold_set_version, " +
            "records_scored, records_positive from dashboard_label_prevalence where run_id = @run and code = @code",
            cancellationToken,
            Run(runId),
            new NpgsqlParameter("code", NpgsqlDbType.Text) { Value = code }))
        .SingleOrDefault();

    /// <summary>
    /// One page of the records a run scored (written or reused) that are flagged for a label: probability at or above
    /// its model's active-set threshold (above the global one for labels without), highest probability first, then
    /// record id ascending (in byte order, the "C" collation, whatever the database's). Keyset paging: the page after <paramref name="after"/> (the last row of the previous one)
    /// starts strictly below it in that order, so rows written meanwhile never shift a page.
    /// The page comes from the run's list of its highest rows for the label (<c>infra/sql/0033_run_label_top.sql</c>:
    /// an index in page order, complete at or above the label's cut while the run's list is 'complete'), each entry
    /// checked against its score row (a primary-key look-up: the row must still be the run's, or one it reused, with
    /// that probability). A cut is a position in page order (probability, record_id). That page is exact when it is
    /// full and its last row is at or above the cut, or when every flagged row is (no cut, the threshold above the
    /// cut's probability, or at it with no cut record or the threshold exclusive): no flagged row can be
    /// missing from the list. Otherwise (a page below the cut, a threshold
    /// below it, a run whose list is not complete) the page is read from the run's rows
    /// (<see cref="FlaggedRecordsScanAsync"/>), which costs a read of all of them (<c>docs/queries.md</c>).
    /// </summary>
    public async Task<IReadOnlyList<Row>> FlaggedRecordsAsync(
        Guid runId, string code, int limit, (float Probability, string RecordId)? after, CancellationToken cancellationToken) =>
        await FlaggedRecordsFromListAsync(runId, code, limit, after, cancellationToken)
        ?? await FlaggedRecordsScanAsync(runId, code, limit, after, cancellationToken);

    /// <summary>
    /// <see cref="FlaggedRecordsAsync"/> from the run's list of its highest rows for the label, or null when that list
    /// cannot give the exact page (the caller reads the rows then).
    /// </summary>
    public async Task<IReadOnlyList<Row>?> FlaggedRecordsFromListAsync(
        Guid runId, string code, int limit, (float Probability, string RecordId)? after, CancellationToken cancellationToken)
    {
        var listed = await RowsAsync(
            "with t as (select t.position, t.threshold, t.inclusive, r.model_id, " +
            "k.cuts[t.position + 1] as cut, k.cut_records[t.position + 1] as cut_record from runs r " +
            "join dashboard_model_label_thresholds t on t.model_id = r.model_id " +
            "join run_label_top_cuts k on k.run_id = r.run_id and k.state = 'complete' " +
            "where r.run_id = @run and t.code = @code), " +
            "c as (select e.probability, e.record_id from t join run_label_top e on e.run_id = @run and e.position = t.position " +
            "where (e.probability > t.threshold or (t.inclusive and e.probability = t.threshold)) " +
            "and (not @paged or e.probability < @after_probability or (e.probability = @after_probability and e.record_id > @after_record)) " +
            "union " +
            "select u.probability, u.record_id collate \"C\" from t join run_label_top_batches b on b.run_id = @run " +
            "cross join lateral unnest(b.positions, b.record_ids, b.probabilities) as u (position, record_id, probability) " +
            "where u.position = t.position and (u.probability > t.threshold or (t.inclusive and u.probability = t.threshold)) " +
            "and (not @paged or u.probability < @after_probability or (u.probability = @after_probability and u.record_id collate \"C\" > @after_record))), " +
            "page as (select x.record_id, x.probability, v.scored_at, v.scored_by_run " +
            "from (select c.probability, c.record_id from c order by c.probability desc, c.record_id) x cross join t " +
            "cross join lateral (select s.scored_at, s.run_id as scored_by_run from scores s " +
            "where s.model_id = t.model_id and s.record_id = x.record_id collate \"default\" and s.probabilities[t.position + 1] = x.probability " +
            "and (s.run_id = @run or exists (select 1 from run_reused_scores u " +
            "where u.run_id = @run and u.model_id = s.model_id and u.record_id = s.record_id))) v " +
            "order by x.probability desc, x.record_id limit @limit) " +
            "select p.record_id::text, p.probability, p.scored_at, p.scored_by_run, null::boolean as exact from page p " +
            "union all " +
            "select null, null, null, null, coalesce((select t.cut is null or t.threshold > t.cut " +
            "or (t.threshold = t.cut and (not t.inclusive or t.cut_record is null)) " +
            "or ((select count(*) from page) = @limit " +
            "and (select run_label_top_at_or_above(p.probability, p.record_id, t.cut, t.cut_record) from page p " +
            "order by p.probability, p.record_id desc limit 1)) from t), false)",
            cancellationToken,
            FlaggedParameters(runId, code, limit, after));
        if (!listed.Any(r => r["exact"] is true))
        {
            return null;
        }

        var page = listed.Where(r => r["exact"] is null).ToList();
        foreach (var row in page)
        {
            row.Remove("exact");
        }

        return page;
    }

    /// <summary>
    /// <see cref="FlaggedRecordsAsync"/> from the run's rows: served by <c>scores_run</c> (run_id, scored_at) for the rows
    /// the run wrote and by the primary key of <c>run_reused_scores</c> (run_id, ...) for those it reused; each page reads
    /// the run's rows once and keeps only the page in a top-N sort.
    /// </summary>
    public Task<IReadOnlyList<Row>> FlaggedRecordsScanAsync(
        Guid runId, string code, int limit, (float Probability, string RecordId)? after, CancellationToken cancellationToken) =>
        RowsAsync(
            "with t as (select t.position, t.threshold, t.inclusive from runs r " +
            "join dashboard_model_label_thresholds t on t.model_id = r.model_id where r.run_id = @run and t.code = @code) " +
            "select x.record_id, x.probability, x.scored_at, x.scored_by_run " +
            "from t cross join lateral (" +
            "select s.record_id, s.probabilities[t.position + 1] as probability, s.scored_at, s.run_id as scored_by_run " +
            "from scores s where s.run_id = @run " +
            "union all " +
            "select s.record_id, s.probabilities[t.position + 1], s.scored_at, s.run_id " +
            "from run_reused_scores u join scores s on s.model_id = u.model_id and s.record_id = u.record_id where u.run_id = @run) x " +
            "where (x.probability > t.threshold or (t.inclusive and x.probability = t.threshold)) " +
            "and (not @paged or x.probability < @after_probability or (x.probability = @after_probability and x.record_id collate \"C\" > @after_record)) " +
            "order by x.probability desc, x.record_id collate \"C\" limit @limit",
            cancellationToken,
            FlaggedParameters(runId, code, limit, after));

    private static NpgsqlParameter[] FlaggedParameters(Guid runId, string code, int limit, (float Probability, string RecordId)? after) =>
    [
        Run(runId),
        new NpgsqlParameter("code", NpgsqlDbType.Text) { Value = code },
        new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = limit },
        new NpgsqlParameter("paged", NpgsqlDbType.Boolean) { Value = after is not null },
        new NpgsqlParameter("after_probability", NpgsqlDbType.Real) { Value = after?.Probability ?? 0f },
        new NpgsqlParameter("after_record", NpgsqlDbType.Text) { Value = after?.RecordId ?? "" },
    ];

    /// <summary>
    /// The score row of a record the run scored (written or reused), with the run that wrote it, that run's input
    /// container and the model; null when the run has no score for the record.
    /// </summary>
    public async Task<Row?> RunRecordAsync(Guid runId, string recordId, CancellationToken cancellationToken) =>
        (await RowsAsync(
            "select s.record_id, s.model_id, mo.name as model_name, mo.untrained as model_untrained, r.run_id, r.name as run_name, " +
            "s.run_id as scored_by_run, sr.name as scored_by_run_name, sr.input_container as container, s.source_blob, s.source_etag, " +
            "s.scored_at, s.windows_used, sr.preprocessing_profile " +
            "from runs r join scores s on s.model_id = r.model_id and s.record_id = @record " +
            "join runs sr on sr.run_id = s.run_id join models mo on mo.model_id = s.model_id " +
            "where r.run_id = @run and (s.run_id = r.run_id or exists (" +
            "select 1 from run_reused_scores u where u.run_id = r.run_id and u.model_id = s.model_id and u.record_id = s.record_id))",
            cancellationToken,
            Run(runId),
            new NpgsqlParameter("record", NpgsqlDbType.Text) { Value = recordId }))
        .SingleOrDefault();

    /// <summary>A record's top findings: its labels at or above their threshold first, then the most probable others, at most <paramref name="limit"/>.</summary>
    public Task<IReadOnlyList<Row>> RecordFindingsAsync(string modelId, string recordId, int limit, CancellationToken cancellationToken) =>
        RowsAsync(
            "select t.code, t.name, t.label_group, u.probability, t.threshold, t.inclusive as threshold_inclusive, " +
            "(u.probability > t.threshold or (t.inclusive and u.probability = t.threshold)) as positive " +
            "from scores s cross join lateral unnest(s.probabilities) with ordinality as u (probability, ord) " +
            "join dashboard_model_label_thresholds t on t.model_id = s.model_id and t.position = u.ord - 1 " +
            "where s.model_id = @model and s.record_id = @record " +
            "order by positive desc, u.probability desc, t.position limit @limit",
            cancellationToken,
            new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = modelId },
            new NpgsqlParameter("record", NpgsqlDbType.Text) { Value = recordId },
            new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = limit });

    private static NpgsqlParameter Evaluation(Guid evaluationId) => new("evaluation", NpgsqlDbType.Uuid) { Value = evaluationId };
}
