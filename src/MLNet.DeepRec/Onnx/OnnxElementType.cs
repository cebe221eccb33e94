namespace MLNet.DeepRec.Onnx;

/// <summary>ONNX tensor element types used by MLNet.DeepRec (values are <c>TensorProto.DataType</c> of the ONNX spec).</summary>
internal enum OnnxElementType
{
    /// <summary>32-bit IEEE float.</summary>
    Float = 1,

    /// <summary>Signed 32-bit integer.</summary>
    Int32 = 6,

    /// <summary>Signed 64-bit integer (the index type of Gather, TopK, shapes and axes).</summary>
    Int64 = 7,

    /// <summary>Boolean.</summary>
    Bool = 9,

    /// <summary>Unsigned 32-bit integer (what ML.NET key-typed columns arrive as).</summary>
    UInt32 = 12,
}
