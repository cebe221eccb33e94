using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Data;

public class LoaderTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() { _dir = Path.Combine(Path.GetTempPath(), "deeprec-loader-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }

    [TearDown]
    public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private string Write(string name, string content) { var p = Path.Combine(_dir, name); File.WriteAllText(p, content); return p; }

    internal static List<(string User, string Item, float Label, double Time)> Rows(IDataView view)
    {
        var rows = new List<(string, string, float, double)>();
        using var c = view.GetRowCursor(view.Schema);
        var u = c.GetGetter<ReadOnlyMemory<char>>(view.Schema["UserId"]);
        var i = c.GetGetter<ReadOnlyMemory<char>>(view.Schema["ItemId"]);
        var l = c.GetGetter<float>(view.Schema["Label"]);
        var t = c.GetGetter<double>(view.Schema["Timestamp"]);
        ReadOnlyMemory<char> uv = default, iv = default; float lv = 0; double tv = 0;
        while (c.MoveNext()) { u(ref uv); i(ref iv); l(ref lv); t(ref tv); rows.Add((uv.ToString(), iv.ToString(), lv, tv)); }
        return rows;
    }

    private static readonly (string, string, float, double)[] Expected =
    {
        ("196", "242", 3f, 881250949), ("186", "302", 3.5f, 891717742), ("22", "377", 1f, 878887116),
    };

    [Test]
    public void LoadsEachMovieLensFormat_ExplicitlyAndByDetection()
    {
        var ml = new MLContext();
        var d = ml.DeepRec().Data;
        string u = Write("u.data", "196\t242\t3\t881250949\n186\t302\t3.5\t891717742\n22\t377\t1\t878887116\n");
        string dat = Write("ratings.dat", "196::242::3::881250949\r\n186::302::3.5::891717742\r\n22::377::1::878887116\r\n\r\n");
        string csv = Write("ratings.csv", "userId,movieId,rating,timestamp\n196,242,3.0,881250949\n186,302,3.5,891717742\n22,377,1.0,878887116\n");
        Assert.That(Rows(d.LoadMovieLens100K(u)), Is.EqualTo(Expected));
        Assert.That(Rows(d.LoadMovieLens1M(dat)), Is.EqualTo(Expected));
        Assert.That(Rows(d.LoadMovieLensCsv(csv)), Is.EqualTo(Expected));
        foreach (var p in new[] { u, dat, csv }) Assert.That(Rows(d.LoadMovieLens(p)), Is.EqualTo(Expected), p);

        var view = d.LoadMovieLens(u);
        Assert.That(view.Schema["UserId"].Type, Is.EqualTo(TextDataViewType.Instance));
        Assert.That(view.Schema["Label"].Type, Is.EqualTo(NumberDataViewType.Single));
        Assert.That(view.Schema["Timestamp"].Type, Is.EqualTo(NumberDataViewType.Double));
        Assert.That(view.GetRowCount(), Is.EqualTo(3));
    }

    [Test]
    public void LoadsSasRecSequences_TimestampIsPositionWithinUser()
    {
        string p = Write("seq.txt", "1 10\n1 11\n2 10\n1 12\n2 13\n");
        var rows = Rows(new MLContext().DeepRec().Data.LoadUserItemSequences(p));
        Assert.That(rows, Is.EqualTo(new[] { ("1", "10", 1f, 0.0), ("1", "11", 1f, 1.0), ("2", "10", 1f, 0.0), ("1", "12", 1f, 2.0), ("2", "13", 1f, 1.0) }));
    }

    [TestCase("u.data", "196\t242\t3\t881250949\n186\t302\tx\t891717742\n", 2, "186\t302\tx\t891717742")]
    [TestCase("ratings.dat", "1::2::3::4\n1::2::3\n", 2, "1::2::3")]
    [TestCase("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n\n1,2,3,oops\n", 4, "1,2,3,oops")]
    [TestCase("seq.txt", "1 2\n1 2 3\n", 2, "1 2 3")]
    public void MalformedLine_ThrowsFormatException_NamingFileLineAndContent(string name, string content, int line, string bad)
    {
        string p = Write(name, content);
        var d = new MLContext().DeepRec().Data;
        TestDelegate load = name == "seq.txt" ? () => d.LoadUserItemSequences(p) : () => d.LoadMovieLens(p);
        var ex = Assert.Throws<FormatException>(load)!;
        Assert.That(ex.Message, Does.Contain(p).And.Contain($"line {line}").And.Contain(bad));
    }

    [Test]
    public void MissingFile_AndUndetectableFormat_ThrowClearly()
    {
        var d = new MLContext().DeepRec().Data;
        Assert.Throws<FileNotFoundException>(() => d.LoadMovieLens(Path.Combine(_dir, "nope.dat")));
        string p = Write("x.txt", "1 2 3 4\n");
        Assert.That(() => d.LoadMovieLens(p), Throws.TypeOf<FormatException>().With.Message.Contains("Cannot detect"));
    }

    [Test]
    public void LoadsALargeRatingsDatCompletely()
    {
        // Parsing speed is measured by the benchmark program, not asserted here (timed unit tests are flaky).
        var sb = new StringBuilder();
        var rng = new Random(0);
        for (int r = 0; r < 200_000; r++)
            sb.Append(rng.Next(1, 6041)).Append("::").Append(rng.Next(1, 3953)).Append("::").Append(rng.Next(1, 6)).Append("::").Append(956703932 + r).Append('\n');
        string p = Write("ratings.dat", sb.ToString());
        var view = new MLContext().DeepRec().Data.LoadMovieLens(p);
        Assert.That(view.GetRowCount(), Is.EqualTo(200_000));
        Assert.That(view.GetColumn<double>("Timestamp").Last(), Is.EqualTo(956703932 + 199_999));
    }
}
