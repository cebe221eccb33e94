using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Models;

public class RecommendationAndBadInputTests
{
    private static TestData.Keyed D => TestData.SmallSynthetic;
    private static readonly Lazy<CollaborativeFilteringTransformer> Model = new(() =>
        D.Context.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
        { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 3, Seed = 1, LearningRate = 0.005 }).Fit(D.Train));

    private static HashSet<uint> SeenBy(uint user) =>
        D.Train.GetColumn<uint>("UserKey").Zip(D.Train.GetColumn<uint>("ItemKey")).Where(p => p.First == user).Select(p => p.Second).ToHashSet();

    [Test]
    public void RecommendExcludesSeenItemsAndIsSortedByScore()
    {
        var recs = Model.Value.Recommend(5u, 10);
        Assert.That(recs, Has.Count.EqualTo(10));
        Assert.That(recs.Select(r => r.ItemKey), Has.None.AnyOf(SeenBy(5).Cast<object>().ToArray()));
        Assert.That(recs.Select(r => r.Score), Is.Ordered.Descending);
        Assert.That(recs.All(r => r.ItemId != null && r.ItemId.StartsWith('i')));
        // The scores are the model's own scores for those pairs.
        var direct = Model.Value.ScoreCandidates(new[] { 5 }, recs.Select(r => (int)r.ItemKey).ToArray(), recs.Count);
        Assert.That(recs.Select(r => r.Score), Is.EqualTo(direct).Within(1e-5));
    }

    [Test]
    public void RecommendWithSeenItemsIncludedCanReturnThem()
    {
        var all = Model.Value.Recommend(5u, Model.Value.ItemCount, excludeSeen: false);
        Assert.That(all, Has.Count.EqualTo(Model.Value.ItemCount));
    }

    [Test]
    public void RecommendRestrictedToCandidatesAndBatchAgreesWithSingle()
    {
        var candidates = new uint[] { 3, 9, 27, 81, 100, 150 };
        var recs = Model.Value.Recommend(7u, 3, excludeSeen: false, candidateItems: candidates);
        Assert.That(recs, Has.Count.EqualTo(3));
        Assert.That(recs.Select(r => r.ItemKey), Is.SubsetOf(candidates));
        var batch = Model.Value.Recommend(new uint[] { 7, 8 }, 3, excludeSeen: false, candidateItems: candidates);
        Assert.That(batch[0].Select(r => r.ItemKey), Is.EqualTo(recs.Select(r => r.ItemKey)));
    }

    [Test]
    public void UnknownUsersGetTheAverageUsersRecommendationsAndFiniteScores()
    {
        var byId = Model.Value.Recommend("no-such-user", 5);
        var byKey = Model.Value.Recommend(0u, 5);
        Assert.That(byId.Select(r => r.ItemKey), Is.EqualTo(byKey.Select(r => r.ItemKey)));
        Assert.That(byId.All(r => float.IsFinite(r.Score)));

        // Through ML.NET: MapValueToKey gives key 0 for an unseen id; the ONNX graph scores it as the average user.
        var chain = new TransformerChain<ITransformer>(D.Keys, Model.Value);
        var engine = D.Context.Model.CreatePredictionEngine<Pair, Prediction>(chain);
        var p = engine.Predict(new Pair { UserId = "never-seen", ItemId = "i1" });
        Assert.That(float.IsFinite(p.Score), Is.True);
        Assert.That(p.Score, Is.EqualTo(Model.Value.ScoreCandidates(new[] { 0 }, new[] { (int)Model.Value.Vocabulary.ItemKey("i1") }, 1)[0]).Within(1e-5));
        var unknownItem = engine.Predict(new Pair { UserId = "u1", ItemId = "never-seen-item" });
        Assert.That(float.IsFinite(unknownItem.Score), Is.True);
    }

    [Test]
    public void BadArgumentsGiveClearErrors()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Model.Value.Recommend(1u, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Model.Value.Recommend(1u, 5, candidateItems: new uint[] { 0 }));
        var t = D.Context.DeepRec().Trainers;
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => t.Gmf(new GmfTrainer.Options { NegativesPerPositive = -1 }))!.ParamName, Is.EqualTo("NegativesPerPositive"));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Gmf(new GmfTrainer.Options { NumberOfEpochs = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Gmf(new GmfTrainer.Options { ValidationK = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Gmf(new GmfTrainer.Options { LearningRate = double.NaN }));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Mlp(new MlpTrainer.Options { MlpLayers = new[] { 33, 8 } }));
    }

    public sealed class Pair { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; }
    public sealed class Prediction { public float Score { get; set; } public float Probability { get; set; } }
    private sealed class Row { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; public float Label { get; set; } }

    private static IDataView Keyed(MLContext ml, IEnumerable<Row> rows) =>
        ml.Transforms.Conversion.MapValueToKey("UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemId"))
            .Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));

    [Test]
    public void BadDataGivesExceptionsNamingTheColumnOrValue()
    {
        var ml = new MLContext(0);
        var rows = new[] { new Row { UserId = "a", ItemId = "x", Label = 1 }, new Row { UserId = "b", ItemId = "y", Label = 1 }, new Row { UserId = "a", ItemId = "z", Label = 1 } };
        var raw = ml.Data.LoadFromEnumerable(rows);

        var notKey = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Gmf().Fit(raw));
        Assert.That(notKey!.Message, Does.Contain("'UserId'").And.Contain("MapValueToKey"));

        var missing = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Gmf(userIdColumnName: "Nope").Fit(Keyed(ml, rows)));
        Assert.That(missing!.Message, Does.Contain("'Nope'"));

        var empty = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Gmf().Fit(Keyed(ml, rows).Let(d => ml.Data.FilterRowsByColumn(d, "Label", lowerBound: 100, upperBound: 200))));
        Assert.That(empty!.Message, Does.Contain("no usable positive interactions"));

        var nan = rows.Select(r => new Row { UserId = r.UserId, ItemId = r.ItemId, Label = float.NaN }).ToArray();
        var nanEx = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Gmf(labelColumnName: "Label").Fit(Keyed(ml, nan)));
        Assert.That(nanEx!.Message, Does.Contain("'Label'").And.Contain("NaN"));

        var ratings = rows.Select(r => new Row { UserId = r.UserId, ItemId = r.ItemId, Label = 4 }).ToArray();
        var ratingEx = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Gmf(labelColumnName: "Label").Fit(Keyed(ml, ratings)));
        Assert.That(ratingEx!.Message, Does.Contain("RatingThreshold"));
        // With a threshold, ratings are implicit feedback.
        using var ok = ml.DeepRec().Trainers.Gmf(new GmfTrainer.Options { LabelColumnName = "Label", RatingThreshold = 3.5f, NumberOfEpochs = 1 }).Fit(Keyed(ml, ratings));
        Assert.That(ok.UserCount, Is.EqualTo(2));
    }
}

internal static class FluentExtensions
{
    public static TOut Let<TIn, TOut>(this TIn value, Func<TIn, TOut> f) => f(value);
}
