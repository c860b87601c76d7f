using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx.Proto;

namespace HubertEcg.Inference.Onnx;

/// <summary>Small helper that appends nodes and initializers to an ONNX graph with generated value names.</summary>
internal sealed class OnnxGraphBuilder
{
    public const string MicrosoftDomain = "com.microsoft";

    private int _counter;

    public GraphProto Graph { get; } = new();

    /// <summary>Adds a float32 initializer.</summary>
    public string Weight(string name, int[] shape, float[] data)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(shape.Select(d => (long)d));
        tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan()));
        Graph.Initializer.Add(tensor);
        return name;
    }

    public string Weight(string name, WeightTensor tensor) => Weight(name, tensor.Shape, tensor.Data);

    /// <summary>Adds a float16 initializer, each value rounded to the nearest half.</summary>
    public string WeightHalf(string name, int[] shape, float[] data)
    {
        var halves = new Half[data.Length];
        for (var i = 0; i < data.Length; i++)
        {
            halves[i] = (Half)data[i];
        }

        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float16 };
        tensor.Dims.AddRange(shape.Select(d => (long)d));
        tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(halves.AsSpan()));
        Graph.Initializer.Add(tensor);
        return name;
    }

    /// <summary>Adds an int64 constant initializer (shapes, axes).</summary>
    public string Int64s(string name, params long[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        Graph.Initializer.Add(tensor);
        return name;
    }

    /// <summary>Adds a node with one output and returns that output's name (generated unless given).</summary>
    public string Node(string op, IEnumerable<string> inputs, IEnumerable<AttributeProto>? attributes = null, string? output = null, string domain = "")
    {
        var name = output ?? $"{op.ToLowerInvariant()}_{(++_counter).ToString(CultureInfo.InvariantCulture)}";
        var node = new NodeProto { OpType = op, Name = "node_" + name, Domain = domain };
        node.Input.AddRange(inputs);
        node.Output.Add(name);
        if (attributes is not null)
        {
            node.Attribute.AddRange(attributes);
        }

        Graph.Node.Add(node);
        return name;
    }

    /// <summary>Adds a node with several outputs.</summary>
    public string[] NodeMulti(string op, IEnumerable<string> inputs, int outputs, IEnumerable<AttributeProto>? attributes = null)
    {
        var id = (++_counter).ToString(CultureInfo.InvariantCulture);
        var names = Enumerable.Range(0, outputs).Select(i => $"{op.ToLowerInvariant()}_{id}_{i.ToString(CultureInfo.InvariantCulture)}").ToArray();
        var node = new NodeProto { OpType = op, Name = $"node_{op.ToLowerInvariant()}_{id}" };
        node.Input.AddRange(inputs);
        node.Output.AddRange(names);
        if (attributes is not null)
        {
            node.Attribute.AddRange(attributes);
        }

        Graph.Node.Add(node);
        return names;
    }

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A float32 tensor value description; a dimension is either a number or a symbolic name.</summary>
    public static ValueInfoProto TensorInfo(string name, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d switch
            {
                int n => new TensorShapeProto.Types.Dimension { DimValue = n },
                string s => new TensorShapeProto.Types.Dimension { DimParam = s },
                _ => throw new ArgumentException($"dimension {d} is neither int nor string", nameof(dims)),
            });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape },
            },
        };
    }
}
