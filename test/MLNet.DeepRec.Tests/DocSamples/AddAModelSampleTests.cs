using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using NUnit.Framework;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.DocSamples.AddAModel;

// docs/architecture.md, "How to add a collaborative model": a complete new model, a plain dot product p_u · q_i + b.
// In the library the two classes go to src/MLNet.DeepRec/Models and src/MLNet.DeepRec/Trainers; here they compile in
// the test assembly, which sees the library's internals.

// <doc:architecture-add-module>
internal sealed class DotModule : CollaborativeModule
{
    private readonly EmbeddingTable user_embedding;
    private readonly EmbeddingTable item_embedding;
    private readonly Parameter bias;

    public DotModule(int userCount, int itemCount, int factors) : base(DotRegistration.Dot.Name, userCount, itemCount)
    {
        Factors = factors;
        user_embedding = UserTable(userCount, factors, std: 0.1);   // count + 1 rows: row 0 is key 0, "unknown"
        item_embedding = ItemTable(itemCount, factors, std: 0.1);
        bias = nn.Parameter(zeros(1));
        RegisterComponents();
    }

    public int Factors { get; }

    // Recorded in checkpoints; the registry entry below rebuilds a network from them.
    public override IReadOnlyDictionary<string, int[]> HyperParameters => new Dictionary<string, int[]> { [CollaborativeModels.Factors.Name] = [Factors] };

    // int64 [n] user and item keys → [n] logits.
    public override Tensor forward(Tensor users, Tensor items) =>
        (user_embedding.call(users) * item_embedding.call(items)).sum(1) + bias;

    // The same computation as ONNX nodes; the keys arrive as int64 [N], already mapped into the trained range.
    public override string ExportOnnx(OnnxGraphBuilder g, string users, string items)
    {
        string p = g.Gather(Weights(g, "dot.user_embedding", user_embedding.Weight), users);
        string q = g.Gather(Weights(g, "dot.item_embedding", item_embedding.Weight), items);
        return g.Add(g.ReduceSum(g.Mul(p, q), new long[] { 1 }, keepDims: false), Weights(g, "dot.bias", bias));
    }

    // Called with the prior log-odds of the labels under BCE loss, before training.
    public override void InitializeOutputBias(double logit)
    {
        using (no_grad()) bias.fill_(logit);
    }
}
// </doc:architecture-add-module>

// <doc:architecture-add-registry>
// In the library the entry goes into the table in Collaborative/CollaborativeModels.cs, and into its All list.
internal static class DotRegistration
{
    public static readonly CollaborativeModelKind Dot = new("Dot", [CollaborativeModels.Factors],
        (users, items, hp) => new DotModule(users, items, CollaborativeModels.Factors.Width(hp)),
        d =>
        {
            int f = CollaborativeModels.Factors.Width(d.HyperParameters);
            d.KeyTables("", f, $"factors = {f}");   // user_embedding, item_embedding: UserCount + 1 and ItemCount + 1 rows
            d.Add("bias", [1], "one value");
        });
}
// </doc:architecture-add-registry>

// <doc:architecture-add-trainer>
/// <summary>A plain dot-product model trained on implicit feedback.</summary>
public sealed class DotTrainer : CollaborativeTrainerBase<DotTrainer.Options>
{
    /// <summary>Dot-product options.</summary>
    public sealed class Options : CollaborativeTrainerOptions
    {
        /// <summary>Latent factors. Default 16.</summary>
        public int Factors = 16;

        internal override void Validate()
        {
            base.Validate();
            if (Factors <= 0) throw new ArgumentOutOfRangeException(nameof(Factors), Factors, "Factors must be positive.");
        }
    }

    internal DotTrainer(MLContext mlContext, Options options) : base(mlContext, options, DotRegistration.Dot.Name) { }

    private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
        new DotModule(userCount, itemCount, TrainerOptions.Factors);
}
// </doc:architecture-add-trainer>

[NonParallelizable]
public class AddAModelSampleTests
{
    [Test]
    public void ANewModuleAndTrainerGetTrainingEvaluationOnnxServingAndRecommendFromTheBase()
    {
        using var directory = new SampleDirectory();
        var ml = new MLContext(seed: 0);
        var interactions = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 150, ItemCount = 200, InteractionsPerUser = 15, Seed = 8 });
        var split = ml.DeepRec().Data.LeaveOneOutSplit(interactions, holdOutValidation: true);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(interactions);
        IDataView train = keys.Transform(split.Train), validation = keys.Transform(split.Validation!), test = keys.Transform(split.Test);

        var trainer = new DotTrainer(ml, new DotTrainer.Options
            { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", LearningRate = 0.005, EarlyStoppingPatience = 3, Seed = 1 });
        using var model = trainer.Fit(train, validation);

        Assert.That(model.ModelName, Is.EqualTo("Dot"));
        Assert.That(model.TrainingReport.BestEpoch, Is.Not.Null, "validation and early stopping come from the base");
        var options = new TopKEvaluationOptions { K = 10, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        var metrics = ml.DeepRec().Evaluation.EvaluateTopK(model, test, train, options);
        var popularity = ml.DeepRec().Evaluation.EvaluateTopK(ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey"), test, train, options);
        TestContext.Out.WriteLine($"Dot: {metrics}; popularity: {popularity}");
        Assert.That(metrics.HitRate, Is.GreaterThan(popularity.HitRate + 0.1));

        // ONNX (ML.NET's OnnxTransformer) scores equal the TorchSharp network's.
        var rows = ml.Data.CreateEnumerable<Scored>(model.Transform(test), reuseRowObject: false).Take(50).ToList();
        var torchScores = model.ScoreCandidates(rows.Select(r => (int)r.UserKey).ToArray(), rows.Select(r => (int)r.ItemKey).ToArray(), 1);
        for (int n = 0; n < rows.Count; n++)
            Assert.That(rows[n].Score, Is.EqualTo(torchScores[n]).Within(1e-4f));

        // Save, load without the trainer, Recommend.
        ml.Model.Save(keys.Append(model), interactions.Schema, "dot.zip");
        var loaded = DeepRecServing.LoadModel(new MLContext(), "dot.zip");
        Assert.That(loaded, Is.Not.Null);
        Assert.That(model.Recommend("u0", 5), Has.Count.EqualTo(5));
    }

    [Test]
    public void TheRegistryEntryRebuildsTheModuleAndDescribesItsParameters()
    {
        var hp = new Dictionary<string, int[]> { ["factors"] = [6] };
        using var module = DotRegistration.Dot.Create(7, 9, hp);
        Assert.That(module, Is.InstanceOf<DotModule>());
        Assert.That(module.Kind, Is.EqualTo("Dot"));
        Assert.That(DotRegistration.Dot.Describe(7, 9, hp, "test").ToDictionary(p => p.Name, p => p.Shape),
            Is.EquivalentTo(module.state_dict().ToDictionary(p => p.Key, p => p.Value.shape)));
    }

    private sealed class Scored
    {
        [Microsoft.ML.Data.KeyType(1000)] public uint UserKey { get; set; }
        [Microsoft.ML.Data.KeyType(1000)] public uint ItemKey { get; set; }
        public float Score { get; set; }
    }
}
