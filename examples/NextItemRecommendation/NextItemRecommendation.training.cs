// Model Builder-style training code: split, key mapping, SASRec with its settings, evaluation, the serving chain.
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;

namespace NextItemRecommendation;

public static partial class NextItemRecommender
{
    /// <summary>The interaction log split leave-one-out, with keys: what training and evaluation read.</summary>
    public sealed record Splits(ITransformer Keys, IDataView Train, IDataView Validation, IDataView Test);

    /// <summary>
    /// Leave-one-out, the SASRec paper's protocol: each user's last item is the test item, the one before it the
    /// validation item (early stopping), the rest is training history. One id → key mapping, fitted on the whole log,
    /// so that the three splits share one key space.
    /// </summary>
    public static Splits Split(MLContext mlContext, IDataView log)
    {
        var split = mlContext.DeepRec().Data.LeaveOneOutSplit(log, holdOutValidation: true);
        ITransformer keys = mlContext.Transforms.Conversion.MapValueToKey(outputColumnName: "UserKey", inputColumnName: "UserId")
            .Append(mlContext.Transforms.Conversion.MapValueToKey(outputColumnName: "ItemKey", inputColumnName: "ItemId"))
            .Fit(log);
        return new Splits(keys, keys.Transform(split.Train), keys.Transform(split.Validation!), keys.Transform(split.Test));
    }

    /// <summary>
    /// SASRec trained with a sampled softmax over the next item and 100 sampled negatives, the loss that did best on
    /// Amazon Games in docs/benchmarks.md. Early stopping on validation NDCG@10 keeps the best epoch's weights.
    /// Real data gets the paper's architecture (histories of up to 50 items, hidden size 50, two self-attention blocks,
    /// dropout 0.5 for the sparse Amazon data); the small generated data gets a smaller model that trains in seconds.
    /// </summary>
    public static SasRecTrainer SasRec(MLContext mlContext, bool smallModel, int epochs, int seed)
    {
        var options = new SasRecTrainer.Options
        {
            UserIdColumnName = "UserKey",
            ItemIdColumnName = "ItemKey",
            HistoryColumnName = "History", // the column the trained model reads when scoring
            MaxLength = 50,
            HiddenSize = 50,
            NumberOfBlocks = 2,
            NumberOfHeads = 1,
            DropoutRate = 0.5,
            Loss = SequentialLoss.SampledSoftmax,
            NegativesPerPositive = 100,
            LearningRate = 0.001,
            BatchSize = 128,
            NumberOfEpochs = epochs,
            EarlyStoppingPatience = 3,
            TopK = 10, // length of the TopKItems / TopKScores output columns
            Seed = seed,
            // One libtorch thread: on a busy machine, one thread per core spins against other processes. Raise it
            // (0 = one per core) on a machine of your own with large data.
            NumberOfThreads = 1,
        };
        if (smallModel)
        {
            options.MaxLength = 20;
            options.HiddenSize = 32;
            options.NumberOfBlocks = 1;
            options.DropoutRate = 0.2;
            options.LearningRate = 0.005;
        }
        return mlContext.DeepRec().Trainers.SasRec(options);
    }

    /// <summary>HR@10, NDCG@10, … of a scorer on the test split, under the given protocol.</summary>
    public static TopKMetrics Evaluate(MLContext mlContext, IItemScorer scorer, Splits data, RankingProtocol protocol) =>
        mlContext.DeepRec().Evaluation.EvaluateTopK(scorer, data.Test, data.Train, new TopKEvaluationOptions
        {
            K = 10,
            Protocol = protocol,
            NegativesPerPositive = 100, // sampled protocol: the test item among 100 items the user has not seen (the paper's)
            UserIdColumnName = "UserKey",
            ItemIdColumnName = "ItemKey",
        });

    /// <summary>
    /// The model as a service wants it, ids in and ids out: <see cref="ModelInput"/>'s item ids → keys, SASRec, and the
    /// top-K keys → item ids ("TopKItemIds"). Every step is ML.NET's own, so <c>mlContext.Model.Save</c> writes the lot.
    /// </summary>
    public static TransformerChain<ITransformer> BuildServingModel(MLContext mlContext, SasRecTransformer model)
    {
        // The item ids in key order (key k is Items[k − 1]). MapValueToKey with these as its key data reproduces the
        // training keys exactly, for the history vector and for the candidate item.
        var items = model.Vocabulary.Items!;
        IDataView keyData = mlContext.Data.LoadFromEnumerable(items.Select(id => new ItemIdRow { ItemId = id }));
        IDataView input = mlContext.Data.LoadFromEnumerable(new List<ModelInput>()); // no rows: the schema is all we need
        ITransformer toKeys = mlContext.Transforms.Conversion.MapValueToKey("History", "History", keyData: keyData)
            .Append(mlContext.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId", keyData: keyData))
            .Fit(input);
        // TopKItems holds item keys (UInt32); key 0 (fewer than K eligible items) maps to "".
        var keyToId = Enumerable.Range(0, items.Count + 1).Select(k => new KeyValuePair<uint, string>((uint)k, k == 0 ? "" : items[k - 1]));
        ITransformer toIds = mlContext.Transforms.Conversion.MapValue("TopKItemIds", keyToId, SasRecTransformer.TopKItemsColumnName)
            .Fit(model.Transform(toKeys.Transform(input)));
        return new TransformerChain<ITransformer>(toKeys, model, toIds);
    }

    private sealed class ItemIdRow
    {
        public string ItemId { get; set; } = "";
    }
}
