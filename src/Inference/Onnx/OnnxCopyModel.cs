using Google.Protobuf;
using HubertEcg.Inference.Onnx.Proto;

namespace HubertEcg.Inference.Onnx;

/// <summary>
/// A one-node ONNX model (<c>Identity</c> over a float32 tensor of any shape) that ONNX Runtime runs to copy a tensor
/// between host and device memory: bound with I/O binding, its input where the data is and its output where it must
/// go, a run is one copy by ONNX Runtime's own data transfer (cudaMemcpy on CUDA, a memory copy on the CPU).
/// </summary>
/// <remarks>
/// ONNX Runtime 1.32's <c>OrtEnv.CopyTensors</c> would be the direct call, but it copies only through data transfers of
/// execution provider libraries registered with the environment: on the CPU provider it answers "Data transfer
/// implementation between source and destination device was not found", and the CUDA provider appended to a session
/// (<c>AppendExecutionProvider_CUDA</c>) registers none. A session of this model works with every provider a scoring
/// session uses, so the CPU tests run the same copies a GPU worker runs.
/// </remarks>
internal static class OnnxCopyModel
{
    public const string InputName = "source";
    public const string OutputName = "copy";

    /// <summary>The serialized model.</summary>
    public static byte[] Bytes { get; } = Build().ToByteArray();

    private static ModelProto Build()
    {
        var graph = new GraphProto { Name = "copy" };
        graph.Input.Add(OnnxGraphBuilder.TensorInfo(InputName, "rows", "columns"));
        graph.Output.Add(OnnxGraphBuilder.TensorInfo(OutputName, "rows", "columns"));
        graph.Node.Add(new NodeProto { OpType = "Identity", Name = "node_copy", Input = { InputName }, Output = { OutputName } });
        var model = new ModelProto
        {
            IrVersion = HubertOnnxExporter.IrVersion,
            ProducerName = "hubert-ecg",
            Domain = "hubert-ecg",
            ModelVersion = 1,
            DocString = "tensor copy between host and device memory",
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = HubertOnnxExporter.OnnxOpset });
        return model;
    }
}
