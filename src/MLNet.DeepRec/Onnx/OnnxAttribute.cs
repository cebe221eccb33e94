namespace MLNet.DeepRec.Onnx;

/// <summary>A node attribute (ONNX <c>AttributeProto</c>): one of float, int, string, floats or ints.</summary>
internal readonly struct OnnxAttribute
{
    // AttributeProto.AttributeType values of the ONNX spec.
    internal const int TypeFloat = 1, TypeInt = 2, TypeString = 3, TypeFloats = 6, TypeInts = 7;

    private OnnxAttribute(string name, int type, float f = 0, long i = 0, string? s = null, float[]? floats = null, long[]? ints = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        Type = type;
        FloatValue = f;
        IntValue = i;
        StringValue = s;
        FloatValues = floats;
        IntValues = ints;
    }

    public string Name { get; }
    public int Type { get; }
    public float FloatValue { get; }
    public long IntValue { get; }
    public string? StringValue { get; }
    public float[]? FloatValues { get; }
    public long[]? IntValues { get; }

    public static OnnxAttribute Int(string name, long value) => new(name, TypeInt, i: value);
    public static OnnxAttribute Ints(string name, long[] values) => new(name, TypeInts, ints: (long[])values.Clone());
    public static OnnxAttribute Float(string name, float value) => new(name, TypeFloat, f: value);
    public static OnnxAttribute Floats(string name, float[] values) => new(name, TypeFloats, floats: (float[])values.Clone());
    public static OnnxAttribute String(string name, string value) => new(name, TypeString, s: value ?? throw new ArgumentNullException(nameof(value)));

    // AttributeProto: name=1, f=2, i=3, s=4, floats=7, ints=8, type=20.
    internal ProtoWriter Serialize()
    {
        var w = new ProtoWriter();
        w.String(1, Name);
        switch (Type)
        {
            case TypeFloat: w.Float(2, FloatValue); break;
            case TypeInt: w.Int64(3, IntValue); break;
            case TypeString: w.Bytes(4, System.Text.Encoding.UTF8.GetBytes(StringValue!)); break;
            case TypeFloats: w.PackedFloat(7, FloatValues!); break;
            case TypeInts: w.PackedInt64(8, IntValues!); break;
        }
        w.Int32(20, Type);
        return w;
    }
}
