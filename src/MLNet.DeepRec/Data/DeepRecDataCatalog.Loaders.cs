using Microsoft.ML;
using MLNet.DeepRec.Data;

namespace MLNet.DeepRec;

public sealed partial class DeepRecDataCatalog
{
    /// <summary>Name of the user id column produced by the loaders and the synthetic generator (text).</summary>
    public const string UserIdColumnName = "UserId";
    /// <summary>Name of the item id column produced by the loaders and the synthetic generator (text).</summary>
    public const string ItemIdColumnName = "ItemId";
    /// <summary>Name of the label column produced by the loaders (<see cref="float"/>: the rating, or 1 for implicit data).</summary>
    public const string LabelColumnName = "Label";
    /// <summary>Name of the timestamp column produced by the loaders (<see cref="double"/>, seconds or sequence position).</summary>
    public const string TimestampColumnName = "Timestamp";

    /// <summary>
    /// Loads a MovieLens rating file, detecting its format from the first non-empty line: <c>u.data</c> of MovieLens
    /// 100K (tab separated), <c>ratings.dat</c> of MovieLens 1M/10M (<c>::</c> separated) or <c>ratings.csv</c> of the
    /// later releases (comma separated, header <c>userId,movieId,rating,timestamp</c>).
    /// </summary>
    /// <param name="path">Path of the rating file.</param>
    /// <returns>An in-memory view with columns <c>UserId</c> (text), <c>ItemId</c> (text), <c>Label</c>
    /// (<see cref="float"/>, the rating) and <c>Timestamp</c> (<see cref="double"/>, Unix seconds), in file order.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">The format cannot be detected, or a line is malformed (the message names the
    /// file, the line number and the line).</exception>
    public IDataView LoadMovieLens(string path)
        => Load(path, InteractionFileParser.DetectMovieLensFormat(path));

    /// <summary>Loads MovieLens 100K <c>u.data</c> (<c>user TAB item TAB rating TAB timestamp</c>). Columns as
    /// <see cref="LoadMovieLens(string)"/>.</summary>
    /// <param name="path">Path of <c>u.data</c> (or of one of its <c>u1.base</c>-style splits).</param>
    /// <exception cref="FormatException">A line is malformed (the message names file, line number and content), or the
    /// file has no data lines.</exception>
    public IDataView LoadMovieLens100K(string path) => Load(path, InteractionFileFormat.MovieLens100K);

    /// <summary>Loads MovieLens 1M/10M <c>ratings.dat</c> (<c>user::item::rating::timestamp</c>). Columns as
    /// <see cref="LoadMovieLens(string)"/>.</summary>
    /// <param name="path">Path of <c>ratings.dat</c>.</param>
    /// <exception cref="FormatException">A line is malformed (the message names file, line number and content), or the
    /// file has no data lines.</exception>
    public IDataView LoadMovieLens1M(string path) => Load(path, InteractionFileFormat.MovieLens1M);

    /// <summary>Loads a MovieLens <c>ratings.csv</c> (header <c>userId,movieId,rating,timestamp</c>, the header is
    /// optional). Columns as <see cref="LoadMovieLens(string)"/>.</summary>
    /// <param name="path">Path of <c>ratings.csv</c>.</param>
    /// <exception cref="FormatException">A line or the header is malformed (the message names file, line number and
    /// content), or the file has no data lines.</exception>
    public IDataView LoadMovieLensCsv(string path) => Load(path, InteractionFileFormat.MovieLensCsv);

    /// <summary>
    /// Loads a file of <c>user item</c> lines (whitespace separated), each user's lines in time order — the format of
    /// the SASRec repository's data files. Produces <c>UserId</c> and <c>ItemId</c> (text), <c>Label</c> = 1 and
    /// <c>Timestamp</c> = the position of the line among the same user's lines (0, 1, 2, …), so that
    /// <see cref="LeaveOneOutSplit"/> holds out each user's last item.
    /// </summary>
    /// <param name="path">Path of the sequence file.</param>
    /// <exception cref="FormatException">A line does not have exactly two fields (the message names file, line number and
    /// content), or the file has no data lines (an empty file: the same error as <see cref="LoadMovieLens(string)"/>).</exception>
    public IDataView LoadUserItemSequences(string path) => Load(path, InteractionFileFormat.UserItemSequence);

    private static IDataView Load(string path, InteractionFileFormat format)
    {
        var parsed = InteractionFileParser.Parse(path, format);
        return CreateInteractionView(parsed.Users, parsed.Items, parsed.Labels, parsed.Timestamps);
    }

    internal static IDataView CreateInteractionView(ReadOnlyMemory<char>[] users, ReadOnlyMemory<char>[] items, float[] labels, double[] timestamps)
        => new ColumnarDataView(new (string, Array)[]
        {
            (UserIdColumnName, users), (ItemIdColumnName, items), (LabelColumnName, labels), (TimestampColumnName, timestamps),
        });
}
