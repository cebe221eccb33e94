using Microsoft.ML;
using MLNet.DeepRec.Data;

namespace MLNet.DeepRec.Tests;

/// <summary>Small synthetic interaction data shared by tests (generated, with planted structure).</summary>
internal static class TestData
{
    public sealed record Keyed(MLContext Context, ITransformer Keys, IDataView All, IDataView Train, IDataView Validation, IDataView Test);

    private static readonly Lazy<Keyed> Small = new(() => Create(new SyntheticInteractionOptions { UserCount = 300, ItemCount = 200, InteractionsPerUser = 30, Seed = 7 }));

    /// <summary>300 users, 200 items, leave-one-out split, keys fitted on all interactions ("UserKey"/"ItemKey").</summary>
    public static Keyed SmallSynthetic => Small.Value;

    public static Keyed Create(SyntheticInteractionOptions options)
    {
        var ml = new MLContext(1);
        var all = ml.DeepRec().Data.GenerateSyntheticInteractions(options);
        var split = ml.DeepRec().Data.LeaveOneOutSplit(all, holdOutValidation: true);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(all);
        return new Keyed(ml, keys, all, keys.Transform(split.Train), keys.Transform(split.Validation!), keys.Transform(split.Test));
    }
}
