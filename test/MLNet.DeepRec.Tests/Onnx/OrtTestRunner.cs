using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace MLNet.DeepRec.Tests.Onnx;

/// <summary>Runs ONNX bytes directly with ONNX Runtime's <see cref="InferenceSession"/> (no ML.NET in between).</summary>
internal static class OrtTestRunner
{
    public sealed record Output(string Name, long[] Shape, float[]? Floats, long[]? Longs, bool[]? Bools);

    public static Dictionary<string, Output> Run(byte[] model, params (string Name, Array Data, long[] Shape)[] inputs)
    {
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(model, options);
        var values = new List<OrtValue>();
        try
        {
            foreach (var (_, data, shape) in inputs)
            {
                values.Add(data switch
                {
                    float[] f => OrtValue.CreateTensorValueFromMemory(f, shape),
                    long[] l => OrtValue.CreateTensorValueFromMemory(l, shape),
                    uint[] u => OrtValue.CreateTensorValueFromMemory(u, shape),
                    int[] i => OrtValue.CreateTensorValueFromMemory(i, shape),
                    bool[] b => OrtValue.CreateTensorValueFromMemory(b, shape),
                    _ => throw new NotSupportedException(data.GetType().Name),
                });
            }
            string[] outputNames = session.OutputNames.ToArray();
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, inputs.Select(i => i.Name).ToArray(), values, outputNames);
            var result = new Dictionary<string, Output>();
            for (int i = 0; i < outputNames.Length; i++)
            {
                var info = results[i].GetTensorTypeAndShape();
                long[] shape = info.Shape;
                result[outputNames[i]] = info.ElementDataType switch
                {
                    TensorElementType.Float => new Output(outputNames[i], shape, results[i].GetTensorDataAsSpan<float>().ToArray(), null, null),
                    TensorElementType.Int64 => new Output(outputNames[i], shape, null, results[i].GetTensorDataAsSpan<long>().ToArray(), null),
                    TensorElementType.Bool => new Output(outputNames[i], shape, null, null, results[i].GetTensorDataAsSpan<bool>().ToArray()),
                    var t => throw new NotSupportedException(t.ToString()),
                };
            }
            return result;
        }
        finally
        {
            foreach (var v in values)
                v.Dispose();
        }
    }
}
