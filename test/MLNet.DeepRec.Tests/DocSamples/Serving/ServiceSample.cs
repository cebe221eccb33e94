// <doc:serving-load-predict>
using Microsoft.ML;
using MLNet.DeepRec.Serving;
// </doc:serving-load-predict>

namespace MLNet.DeepRec.Tests.DocSamples.Serving.Service;

/// <summary>docs/serving.md's service: a separate program that loads the saved zip and predicts.</summary>
internal static class ServiceSample
{
    public static Prediction Run()
    {
        // <doc:serving-load-predict>
        var mlContext = new MLContext();
        // Registers the DeepRec score mappings, opens the file read-only, and reports an unreadable file as
        // InvalidDataException naming the file (FileNotFoundException when it is missing).
        ITransformer model = DeepRecServing.LoadModel(mlContext, "neumf.zip");

        var engine = mlContext.Model.CreatePredictionEngine<Pair, Prediction>(model);
        Prediction p = engine.Predict(new Pair { UserId = "196", ItemId = "242" });
        Console.WriteLine($"Score {p.Score:F3}, Probability {p.Probability:F3}");
        // </doc:serving-load-predict>
        return p;
    }

    public static ITransformer LoadForGpu()
    {
        // <doc:serving-gpu>
        var mlContext = new MLContext { GpuDeviceId = 0, FallbackToCpu = true };
        ITransformer model = DeepRecServing.LoadModel(mlContext, "neumf.zip");
        // </doc:serving-gpu>
        return model;
    }
}

// <doc:serving-load-predict>
public sealed class Pair { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; }
public sealed class Prediction { public float Score { get; set; } public float Probability { get; set; } }
// </doc:serving-load-predict>
