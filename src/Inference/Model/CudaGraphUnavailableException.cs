namespace HubertEcg.Inference.Model;

/// <summary>
/// ONNX Runtime refused to capture the model in a CUDA graph (<c>enable_cuda_graph</c>) when it created the session.
/// The message is one line: the model, the device, ONNX Runtime's own reason, and what to do.
/// </summary>
public sealed class CudaGraphUnavailableException : Exception
{
    public CudaGraphUnavailableException()
    {
    }

    public CudaGraphUnavailableException(string message)
        : base(message)
    {
    }

    public CudaGraphUnavailableException(string message, Exception? inner)
        : base(message, inner)
    {
    }

    public CudaGraphUnavailableException(string modelPath, int deviceId, Exception error)
        : base(
            $"The model {modelPath} cannot be captured in a CUDA graph on device {deviceId}: ONNX Runtime says \"{FirstLine(error.Message)}\"; " +
            "CUDA graphs need every node on the CUDA provider (no CPU fallback, no control flow), fixed input shapes and inputs and outputs bound at " +
            "fixed device addresses: turn Workers:Cuda:EnableCudaGraph off for this model",
            error)
    {
    }

    private static string FirstLine(string? text)
    {
        var line = (text ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
        return line.Length == 0 ? "no reason given" : line.TrimEnd('.');
    }
}
