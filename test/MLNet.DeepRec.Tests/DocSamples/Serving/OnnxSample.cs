// <doc:serving-onnx>
using Microsoft.ML.OnnxRuntime;
// </doc:serving-onnx>
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Tests.DocSamples.Serving;

/// <summary>docs/serving.md's ONNX Runtime samples: the exported graph scored outside ML.NET.</summary>
internal static class OnnxSample
{
    public static float[] Run(CollaborativeFilteringTransformer neumf)
    {
        // <doc:serving-onnx>
        neumf.ExportOnnx("neumf.onnx");                    // neumf: the CollaborativeFilteringTransformer from Fit
        uint[] users = new[] { "196", "186", "unknown-user" }.Select(neumf.Vocabulary.UserKey).ToArray();   // 0 = unknown
        uint[] items = new[] { "242", "302", "377" }.Select(neumf.Vocabulary.ItemKey).ToArray();

        using var session = new InferenceSession("neumf.onnx");
        using var userKeys = OrtValue.CreateTensorValueFromMemory(users, [users.Length, 1]);
        using var itemKeys = OrtValue.CreateTensorValueFromMemory(items, [items.Length, 1]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions,
            new Dictionary<string, OrtValue> { ["user_key"] = userKeys, ["item_key"] = itemKeys },
            ["Score", "Probability"]);
        ReadOnlySpan<float> scores = outputs[0].GetTensorDataAsSpan<float>();         // [N,1], row-major
        ReadOnlySpan<float> probabilities = outputs[1].GetTensorDataAsSpan<float>();
        // </doc:serving-onnx>
        for (int n = 0; n < scores.Length; n++)
            if (MathF.Abs(probabilities[n] - 1 / (1 + MathF.Exp(-scores[n]))) > 1e-5f) throw new InvalidOperationException("Probability is not σ(Score).");
        return scores.ToArray();
    }

    public static void RunOnCuda()
    {
        // <doc:serving-onnx-gpu>
        using var options = SessionOptions.MakeSessionOptionWithCudaProvider(deviceId: 0);
        using var session = new InferenceSession("neumf.onnx", options);
        // </doc:serving-onnx-gpu>
    }
}
