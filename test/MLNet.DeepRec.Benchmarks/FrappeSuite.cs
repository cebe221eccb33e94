using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// frappe (NFM/AFM libFM split): FM (= NFM-0), NFM, AFM and ML.NET's FieldAwareFactorizationMachine trained in the same
/// run on the same 10 field columns; test RMSE on ±1 labels (the papers' protocol), AUC/log-loss in the binary framing,
/// throughput, peak memory, parameter counts.
/// </summary>
internal sealed class FrappeSuite : IBenchmarkSuite
{
    public string Name => "frappe";

    private sealed record Row(string Model, string Task, string Settings, long Parameters, double? Rmse, double? RmseClipped, double? Auc, double? LogLoss,
        int Epochs, int? BestEpoch, double SecondsPerEpoch, double SamplesPerSecond, double TrainSeconds);

    public string? Run(BenchmarkContext context)
    {
        string dir = context.Arg("--frappe") ?? Path.Combine(context.SharedDatasets, "frappe");
        string trainPath = Path.Combine(dir, "frappe.train.reconstructed.libfm");
        string validPath = Path.Combine(dir, "frappe.validation.libfm");
        string testPath = Path.Combine(dir, "frappe.test.libfm");
        if (!File.Exists(trainPath) || !File.Exists(validPath) || !File.Exists(testPath))
        {
            Console.Error.WriteLine($"frappe not found under {Path.GetFullPath(dir)}; pass --frappe DIR. Skipping.");
            return null;
        }
        bool quick = context.Quick;
        const int seed = 2026;
        var ml = new MLContext(seed);
        ml.Log += (_, e) => { if (e.Message.Contains("Epoch ", StringComparison.Ordinal) || e.Message.Contains("Early stopping", StringComparison.Ordinal) || e.Message.Contains("parameters.", StringComparison.Ordinal)) Console.WriteLine("  " + e.Message); };
        var data = ml.DeepRec().Data;
        var layout = data.InferLibFmFields(trainPath, validPath, testPath);
        string[] fields = { "User", "Item", "Daytime", "Weekday", "IsWeekend", "Homework", "Cost", "Weather", "Country", "City" };
        layout.FieldColumnNames = fields;
        IDataView Load(string path, bool boolean) => data.LoadLibFm(path, new LibFmLoaderOptions { FieldStarts = layout.FieldStarts, FeatureCount = layout.FeatureCount, FieldColumnNames = fields, BooleanLabel = boolean });
        var load = Stopwatch.StartNew();
        // Cached: ML.NET's FFM makes several passes.
        IDataView train = ml.Data.Cache(Load(trainPath, false)), valid = Load(validPath, false), test = Load(testPath, false);
        IDataView trainB = ml.Data.Cache(Load(trainPath, true)), validB = Load(validPath, true), testB = Load(testPath, true);
        Console.WriteLine($"Loaded frappe ({layout.FeatureCount} features, {fields.Length} fields) in {load.Elapsed.TotalSeconds:F1} s");
        float[] testLabels = ml.Data.CreateEnumerable<LabelRow>(test, false).Select(r => r.Label).ToArray();

        int nfmEpochs = quick ? 4 : 40, afmEpochs = quick ? 2 : 30, patience = quick ? 0 : 3;
        // One libtorch thread: on the shared 2-core machine two OpenMP threads spin against other processes (observed 10x slower).
        int threads = context.Arg("--threads") is string t ? int.Parse(t, CultureInfo.InvariantCulture) : 1;
        var rows = new List<Row>();
        T Common<T>(T o, FeatureInteractionTask task, int epochs, double learningRate) where T : FeatureInteractionTrainerOptions
        {
            o.FeatureColumnNames = fields; o.Task = task; o.Seed = seed; o.BatchSize = 512; o.NumberOfEpochs = epochs; o.EarlyStoppingPatience = patience; o.LearningRate = learningRate; o.NumberOfThreads = threads;
            return o;
        }
        foreach (var task in new[] { FeatureInteractionTask.Regression, FeatureInteractionTask.BinaryClassification })
        {
            bool reg = task == FeatureInteractionTask.Regression;
            var (tr, va, te) = reg ? (train, valid, test) : (trainB, validB, testB);
            // The FM row is the papers' FM (no batch norm, dropout 0.5 on the pairwise layer); AFM starts from its
            // embeddings, as both papers pre-train (NFM §4, AFM §4.1). Disposed after the task's rows.
            FeatureInteractionTransformer? fm = null;
            var configs = new (string Name, string Settings, Func<FeatureInteractionTransformer> Fit)[]
            {
                ("FM (NFM-0)", "64 factors, no hidden layer, no BN, dropout 0.5, Adam lr 0.005", () => ml.DeepRec().Trainers.Nfm(Common(new NfmTrainer.Options { HiddenLayers = Array.Empty<int>(), BatchNormalization = false, BiInteractionDropout = 0.5 }, task, nfmEpochs, 0.005)).Fit(tr, va)),
                ("NFM", "64 factors, 1 hidden layer 64, BN, dropout 0.5/0.2, Adam lr 0.002 (trainer defaults)", () => ml.DeepRec().Trainers.Nfm(Common(new NfmTrainer.Options(), task, nfmEpochs, 0.002)).Fit(tr, va)),
                ("AFM", "64 factors, attention 64, dropout 0.5, Adam lr 0.002, embeddings pre-trained from the FM row", () => ml.DeepRec().Trainers.Afm(Common(new AfmTrainer.Options { AttentionSize = 64, Dropout = 0.5, PretrainedModel = fm }, task, afmEpochs, 0.002)).Fit(tr, va)),
            };
            foreach (var (name, settings, fit) in configs)
            {
                var watch = Stopwatch.StartNew();
                var model = fit();
                double seconds = watch.Elapsed.TotalSeconds;
                var scored = model.Transform(te);
                var epochs = model.TrainingReport.Epochs;
                var steady = epochs.Count > 1 ? epochs.Skip(1).ToList() : epochs.ToList();
                double spe = steady.Average(e => e.TrainSeconds);
                double sps = steady.Sum(e => e.SamplesPerSecond * e.TrainSeconds) / steady.Sum(e => e.TrainSeconds);
                Row row;
                if (reg)
                {
                    var m = ml.Regression.Evaluate(scored);
                    float[] s = scored.GetColumn<float>("Score").ToArray();
                    row = new Row(name, "regression", settings, model.ParameterCount, m.RootMeanSquaredError, Rmse(s, testLabels, clip: true), Auc(s, testLabels), null,
                        epochs.Count, model.TrainingReport.BestEpoch, spe, sps, seconds);
                }
                else
                {
                    var m = ml.BinaryClassification.Evaluate(scored);
                    float[] p = scored.GetColumn<float>("Probability").ToArray();
                    row = new Row(name, "binary", settings, model.ParameterCount, Rmse(p.Select(x => 2 * x - 1).ToArray(), testLabels, false), null, m.AreaUnderRocCurve, m.LogLoss,
                        epochs.Count, model.TrainingReport.BestEpoch, spe, sps, seconds);
                }
                rows.Add(row);
                if (name.StartsWith("FM", StringComparison.Ordinal)) fm = model; else model.Dispose();
                Console.WriteLine($"{name} {row.Task}: RMSE {row.Rmse:F4} (clipped {row.RmseClipped:F4}), AUC {row.Auc:F4}, log-loss {row.LogLoss:F4}, {row.Epochs} epochs (best {row.BestEpoch}), {spe:F2} s/epoch, {sps:N0} samples/s, {seconds:F1} s");
            }
            fm?.Dispose();
        }

        // ML.NET's field-aware FM: binary classification only (Boolean label), same 10 field columns.
        {
            int iterations = quick ? 3 : 10;
            var watch = Stopwatch.StartNew();
            var ffm = ml.BinaryClassification.Trainers.FieldAwareFactorizationMachine(new Microsoft.ML.Trainers.FieldAwareFactorizationMachineTrainer.Options
            {
                FeatureColumnName = fields[0], ExtraFeatureColumns = fields[1..], LabelColumnName = "Label", NumberOfIterations = iterations, LatentDimension = 20, LearningRate = 0.1f,
            }).Fit(trainB);
            double seconds = watch.Elapsed.TotalSeconds;
            var scored = ffm.Transform(testB);
            var m = ml.BinaryClassification.Evaluate(scored);
            float[] p = scored.GetColumn<float>("Probability").ToArray();
            long parameters = (long)layout.FeatureCount!.Value * (1 + fields.Length * 20);
            rows.Add(new Row("ML.NET FFM", "binary", $"{iterations} iterations, latent 20, lr 0.1 (ML.NET defaults otherwise)", parameters,
                Rmse(p.Select(x => 2 * x - 1).ToArray(), testLabels, false), null, m.AreaUnderRocCurve, m.LogLoss, iterations, null, seconds / iterations, 202027 * iterations / seconds, seconds));
            Console.WriteLine($"ML.NET FFM: AUC {m.AreaUnderRocCurve:F4}, log-loss {m.LogLoss:F4}, RMSE(2p−1) {rows[^1].Rmse:F4}, {seconds:F1} s");
        }
        double peakMb = Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0;
        return Build(rows, quick, peakMb, context.CommandLine);
    }

    private sealed class LabelRow { public float Label { get; set; } }

    private static double Rmse(float[] predictions, float[] labels, bool clip)
    {
        double sum = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            double p = clip ? Math.Clamp(predictions[i], -1f, 1f) : predictions[i];
            sum += (p - labels[i]) * (p - labels[i]);
        }
        return Math.Sqrt(sum / labels.Length);
    }

    private static double Auc(float[] scores, float[] labels) =>
        FeatureInteractionTrainerBase<NfmTrainer.Options, FeatureInteractionTransformer>.Auc(scores, labels.Select(l => l > 0 ? 1f : 0f).ToArray());

    private static string F(double? v, string format = "F4") => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "–";

    private static string Build(List<Row> rows, bool quick, double peakMb, string arguments)
    {
        var sb = new StringBuilder();
        sb.AppendLine("<!-- begin frappe (generated by test/MLNet.DeepRec.Benchmarks; do not edit by hand) -->");
        sb.AppendLine("## frappe: FM, NFM, AFM and ML.NET's field-aware FM (issue 4)");
        sb.AppendLine();
        sb.AppendLine($"- Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC. Machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}; libtorch {TorchSharp.torch.__version__} CPU, {TorchSharp.torch.get_num_threads()} threads. Other builds/agents may have shared the 2 cores: treat timings as indicative.");
        sb.AppendLine("- Data: the NFM/AFM frappe libFM split: `frappe.validation.libfm` and `frappe.test.libfm` are the papers' files; **`frappe.train.reconstructed.libfm` is a reconstruction** (original positives, re-sampled negatives; see the dataset's RECONSTRUCTION.md), so results are close to, not identical with, a run on the original training file. 202,027 / 57,722 / 28,860 rows, 5,382 features in 10 fields (user, item, 8 context fields), each field one sparse one-hot `Vector<Single>` column from `LoadLibFm` with inferred fields; every model reads the same 10 columns.");
        sb.AppendLine($"- Command: `dotnet run --project test/MLNet.DeepRec.Benchmarks -c Release -- {arguments}`{(quick ? " (quick mode: few epochs, no early stopping — not representative of quality)" : "")}");
        sb.AppendLine("- Training: batch 512, Adam (learning rate per row), AFM's feature embeddings, linear weights and global bias initialised from the FM row trained just before it on the same task (`PretrainedModel`; the papers' pre-training), validation metric on the validation file after each epoch (−RMSE for regression, AUC for binary), early stopping with patience 3, one libtorch thread unless `--threads` is given, best epoch's weights kept. Test metrics come from the ML.NET pipeline (ONNX Runtime scoring, `mlContext.Regression.Evaluate` / `mlContext.BinaryClassification.Evaluate`).");
        sb.AppendLine();
        sb.AppendLine("### Quality on the test file");
        sb.AppendLine();
        sb.AppendLine("| Model | Trained as | Settings | Parameters | Test RMSE (±1 labels) | RMSE, predictions clipped to [−1, 1] | AUC | Log-loss | Epochs (best) |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Model} | {r.Task} | {r.Settings} | {r.Parameters:N0} | {F(r.Rmse)}{(r.Task == "binary" ? "†" : "")} | {F(r.RmseClipped)} | {F(r.Auc)} | {F(r.LogLoss)} | {r.Epochs} ({(r.BestEpoch is int b ? b.ToString(CultureInfo.InvariantCulture) : "–")}) |");
        sb.AppendLine();
        sb.AppendLine("Regression rows: squared loss on the ±1 labels, the papers' protocol (the NFM code clips predictions to the label range before RMSE: the clipped column). Their AUC ranks by the regression score. † Binary rows (Boolean label = label > 0, log loss) report RMSE of 2p − 1 against the ±1 labels, p the predicted probability, so that ML.NET's FFM, which is binary-only, can be placed on the papers' scale. ML.NET FFM's parameter count is features × (1 + fields × latent).");
        sb.AppendLine();
        sb.AppendLine("Published (original training file, TensorFlow, Adagrad, pre-training for AFM): NFM 0.3127 (128 factors) – 0.3095 (256 factors), AFM 0.3102 (256 factors), libFM 0.3385 test RMSE.");
        sb.AppendLine();
        sb.AppendLine("### Training cost");
        sb.AppendLine();
        sb.AppendLine("| Model | Trained as | s/epoch | samples/s | train s (incl. validation) |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Model} | {r.Task} | {r.SecondsPerEpoch:F2} | {r.SamplesPerSecond:N0} | {r.TrainSeconds:F1} |");
        sb.AppendLine();
        sb.AppendLine("Steady-state epochs (first excluded), shuffling included, validation excluded. ML.NET FFM: seconds per iteration over the whole fit (its own multi-threaded SGD, data caching included).");
        sb.AppendLine();
        sb.AppendLine($"Peak working set of the whole benchmark process: {peakMb:N0} MB.");
        sb.AppendLine("<!-- end frappe -->");
        return sb.ToString();
    }
}
