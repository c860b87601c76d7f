using HubertEcg.Inference.Model;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>Model descriptors for tests that register a model but never score (lease bookkeeping, writers).</summary>
public static class TestModels
{
    public static Lazy<IReadOnlyList<string>> LabelCodes { get; } = new(() =>
        LabelCatalog.LoadCodes(RepoPaths.SharedFile("labels", "cardio-learning-164.csv")));

    public static ModelDescriptor Descriptor(string modelId, int hiddenSize = 16) =>
        new(modelId, "registered for a test", "none", hiddenSize, LabelCodes.Value, Untrained: true, "{\"kind\":\"test\"}", "hubert-ecg-2024");
}
