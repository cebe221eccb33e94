using Microsoft.ML;
using Microsoft.ML.Data;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Data;

public class SplitterTests
{
    private sealed class Row
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
        public int Timestamp { get; set; }
    }

    private static IDataView Data(MLContext ml) => ml.Data.LoadFromEnumerable(new[]
    {
        new Row { UserId = "a", ItemId = "1", Timestamp = 10 },
        new Row { UserId = "a", ItemId = "2", Timestamp = 30 }, // a: latest (tie at 30, later row wins below)
        new Row { UserId = "b", ItemId = "1", Timestamp = 5 },  // b: single interaction -> stays in train
        new Row { UserId = "a", ItemId = "3", Timestamp = 30 }, // a: tie with item 2, later row -> test
        new Row { UserId = "c", ItemId = "4", Timestamp = 2 },
        new Row { UserId = "c", ItemId = "5", Timestamp = 1 },  // c: two interactions
        new Row { UserId = "a", ItemId = "4", Timestamp = 20 },
    });

    private static List<string> UnusedPairs(IDataView view, string user = "UserId", string item = "ItemId")
    {
        var list = new List<string>();
        using var c = view.GetRowCursor(view.Schema);
        var u = c.GetGetter<string>(view.Schema[user]);
        var i = c.GetGetter<string>(view.Schema[item]);
        string uv = "", iv = "";
        while (c.MoveNext()) { u(ref uv); i(ref iv); list.Add(uv + iv); }
        return list;
    }

    private static List<string> TextPairs(IDataView view)
    {
        var list = new List<string>();
        using var c = view.GetRowCursor(view.Schema);
        var u = c.GetGetter<ReadOnlyMemory<char>>(view.Schema["UserId"]);
        var i = c.GetGetter<ReadOnlyMemory<char>>(view.Schema["ItemId"]);
        ReadOnlyMemory<char> uv = default, iv = default;
        while (c.MoveNext()) { u(ref uv); i(ref iv); list.Add(uv.ToString() + iv.ToString()); }
        return list;
    }

    [Test]
    public void LeaveOneOut_LatestToTest_TiesByRowOrder_SmallUsersStayInTrain()
    {
        var ml = new MLContext();
        var split = ml.DeepRec().Data.LeaveOneOutSplit(Data(ml));
        Assert.That(split.Validation, Is.Null);
        Assert.That(TextPairs(split.Test), Is.EqualTo(new[] { "a3", "c4" }));
        Assert.That(TextPairs(split.Train), Is.EqualTo(new[] { "a1", "a2", "b1", "c5", "a4" }));
        Assert.That(split.Test.GetRowCount(), Is.EqualTo(2));

        var withVal = ml.DeepRec().Data.LeaveOneOutSplit(Data(ml), holdOutValidation: true);
        Assert.That(TextPairs(withVal.Test), Is.EqualTo(new[] { "a3", "c4" }));
        Assert.That(TextPairs(withVal.Validation!), Is.EqualTo(new[] { "a2" })); // c has only 2: no validation
        Assert.That(TextPairs(withVal.Train), Is.EqualTo(new[] { "a1", "b1", "c5", "a4" }));
    }

    [Test]
    public void LeaveOneOut_PreservesSchema_IncludingKeyTypes_AndAcceptsKeyUserColumn()
    {
        var ml = new MLContext();
        var keyed = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(Data(ml)).Transform(Data(ml));
        var split = ml.DeepRec().Data.LeaveOneOutSplit(keyed, userIdColumnName: "UserKey", holdOutValidation: true);
        foreach (var part in new[] { split.Train, split.Test, split.Validation! })
        {
            Assert.That(part.Schema.Count, Is.EqualTo(keyed.Schema.Count));
            for (int c = 0; c < keyed.Schema.Count; c++)
            {
                Assert.That(part.Schema[c].Name, Is.EqualTo(keyed.Schema[c].Name));
                Assert.That(part.Schema[c].Type, Is.EqualTo(keyed.Schema[c].Type));
            }
            Assert.That(part.Schema["UserKey"].Type, Is.InstanceOf<KeyDataViewType>());
            Assert.That(part.Schema["ItemKey"].Annotations.Schema.GetColumnOrNull("KeyValues"), Is.Not.Null);
        }
        Assert.That(TextPairs(split.Test), Is.EqualTo(new[] { "a3", "c4" }));
        // The key-typed split is usable downstream, e.g. by KeyedInteractions.
        var test = MLNet.DeepRec.Data.KeyedInteractions.FromDataView(split.Test, "UserKey", "ItemKey");
        Assert.That(test.Count, Is.EqualTo(2));
        Assert.That(test.ItemCount, Is.EqualTo(5));
    }

    private sealed class IntRow { public long User { get; set; } public float Time { get; set; } public int Item { get; set; } }

    [Test]
    public void LeaveOneOut_IntegerUserAndFloatTimestamp()
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(new[]
        {
            new IntRow { User = 7, Time = 3, Item = 1 }, new IntRow { User = 7, Time = 1, Item = 2 },
            new IntRow { User = 8, Time = 1, Item = 3 }, new IntRow { User = 8, Time = 9, Item = 4 },
        });
        var split = ml.DeepRec().Data.LeaveOneOutSplit(data, "User", "Time");
        using var c = split.Test.GetRowCursor(split.Test.Schema);
        var item = c.GetGetter<int>(split.Test.Schema["Item"]);
        var items = new List<int>(); int v = 0;
        while (c.MoveNext()) { item(ref v); items.Add(v); }
        Assert.That(items, Is.EqualTo(new[] { 1, 4 }));
        Assert.That(() => ml.DeepRec().Data.LeaveOneOutSplit(data, "Nope", "Time"),
            Throws.ArgumentException.With.Message.Contains("'Nope'"));
    }

    [Test]
    public void RandomSplit_RowLevel_IsDeterministicAndPartitions()
    {
        var ml = new MLContext();
        var data = ml.DeepRec().Data.GenerateSyntheticInteractions(new MLNet.DeepRec.Data.SyntheticInteractionOptions { UserCount = 50, ItemCount = 100 });
        long n = data.GetRowCount()!.Value;
        var s1 = ml.DeepRec().Data.RandomSplit(data, 0.2, 0.1, seed: 4);
        var s2 = ml.DeepRec().Data.RandomSplit(data, 0.2, 0.1, seed: 4);
        Assert.That(TextPairs(s1.Test), Is.EqualTo(TextPairs(s2.Test)));
        Assert.That(s1.Test.GetRowCount(), Is.EqualTo((long)Math.Round(0.2 * n, MidpointRounding.AwayFromZero)));
        Assert.That(s1.Validation!.GetRowCount(), Is.EqualTo((long)Math.Round(0.1 * n, MidpointRounding.AwayFromZero)));
        var all = TextPairs(s1.Train).Concat(TextPairs(s1.Test)).Concat(TextPairs(s1.Validation)).OrderBy(x => x, StringComparer.Ordinal);
        Assert.That(all, Is.EqualTo(TextPairs(data).OrderBy(x => x, StringComparer.Ordinal)));
        Assert.That(ml.DeepRec().Data.RandomSplit(data, 0.2).Validation, Is.Null);
        Assert.That(() => ml.DeepRec().Data.RandomSplit(data, 0),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("testFraction"));
        Assert.That(() => ml.DeepRec().Data.RandomSplit(data, 0.6, 0.5),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("validationFraction"));
    }

    [Test]
    public void RandomSplit_PerUser_StratifiesAndKeepsATrainingRowPerUser()
    {
        var ml = new MLContext();
        var data = ml.DeepRec().Data.GenerateSyntheticInteractions(new MLNet.DeepRec.Data.SyntheticInteractionOptions { UserCount = 80, ItemCount = 100, InteractionsPerUser = 10 });
        var split = ml.DeepRec().Data.RandomSplit(data, 0.2, seed: 1, userIdColumnName: "UserId");
        var train = TextPairs(split.Train).GroupBy(p => p.Split('i')[0]).ToDictionary(g => g.Key, g => g.Count());
        var test = TextPairs(split.Test).GroupBy(p => p.Split('i')[0]).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(train.Count, Is.EqualTo(80));
        foreach (var (user, t) in test)
        {
            int total = t + train[user];
            Assert.That(t, Is.EqualTo(Math.Min((int)Math.Round(0.2 * total, MidpointRounding.AwayFromZero), total - 1)), user);
        }
    }
}
