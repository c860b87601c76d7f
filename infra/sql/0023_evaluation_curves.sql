-- Curves of an evaluation's labels, for the dashboard's evaluation page (issue 17).
--
-- Stored, not recomputed: an evaluation of a scores file keeps neither the scores nor the diagnoses, and one of a run
-- would need the label file again. `hubert-ecg evaluate` computes each label's ROC and precision-recall curve in the
-- sweep it already makes and keeps at most 256 points per label (BinaryMetrics.CurvePoints: a point whenever the curve
-- has moved 1/254 of its length), so an evaluation's curves are at most 164 x 256 points whatever the cohort size.
--
-- Point i: at thresholds[i] a record is positive when its probability is at or above it, with tpr[i] (the recall),
-- fpr[i] and precision[i]. Thresholds run from the highest probability down to the lowest (where tpr = fpr = 1).
-- Labels without both classes in the cohort have no curve (no row).
create table evaluation_curves (
    evaluation_id uuid not null,
    position integer not null,
    thresholds real[] not null,
    tpr real[] not null,
    fpr real[] not null,
    precision real[] not null,
    primary key (evaluation_id, position),
    foreign key (evaluation_id, position) references evaluation_labels (evaluation_id, position) on delete cascade,
    check (cardinality(thresholds) between 1 and 1024
           and cardinality(tpr) = cardinality(thresholds)
           and cardinality(fpr) = cardinality(thresholds)
           and cardinality(precision) = cardinality(thresholds))
);

grant select on evaluation_curves to hubert_dashboard;
