using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>A tiny random-weight HuBERT-ECG exported to ONNX with the 164-label head, in a temporary folder.</summary>
public sealed class TinyModel : IDisposable
{
    public TinyModel(int seed = 7, ModelPrecision precision = ModelPrecision.Fp32)
    {
        Directory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "hubert-tiny-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        Path = System.IO.Path.Combine(Directory, "tiny.onnx");
        var codes = LabelCatalog.LoadCodes(RepoPaths.SharedFile("labels", "cardio-learning-164.csv"));
        var checkpoint = RandomModelFactory.Create(HubertArchitecture.Tiny(), labels: codes.Count, seed: seed);
        Descriptor = HubertOnnxExporter.Export(checkpoint, Path, new OnnxExportOptions { LabelCodes = codes, Precision = precision });
    }

    public string Directory { get; }

    public string Path { get; }

    public ModelDescriptor Descriptor { get; }

    public void Dispose()
    {
        if (System.IO.Directory.Exists(Directory))
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }
}
