using Microsoft.ML;
using MLNet.DeepRec.Data;

namespace MLNet.DeepRec;

public sealed partial class DeepRecDataCatalog
{
    /// <summary>
    /// Loads a libFM file (<c>label idx:value idx:value …</c>, whitespace separated, 0-based feature indices) into an
    /// in-memory view: a label column (Single as in the file, or Boolean with <see cref="LibFmLoaderOptions.BooleanLabel"/>)
    /// and either one sparse <c>Vector&lt;Single&gt;</c> "Features" column or, with <see cref="LibFmLoaderOptions.FieldStarts"/>,
    /// one sparse vector column per field — the input NFM, AFM and ML.NET's FieldAwareFactorizationMachine take.
    /// </summary>
    /// <param name="path">The libFM file.</param>
    /// <param name="options">Field assignment, feature count, column names, label kind. Default: one "Features" column sized by the file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">A line is malformed, a value is not finite, or a feature index is beyond
    /// <see cref="LibFmLoaderOptions.FeatureCount"/> (the message names file, line number and content).</exception>
    public IDataView LoadLibFm(string path, LibFmLoaderOptions? options = null) => LibFmLoader.Load(path, options ?? new LibFmLoaderOptions());

    /// <summary>
    /// Infers the field layout of libFM files in which every line lists one feature per field, in field order (as the
    /// NFM/AFM frappe and MovieLens files do): position k on a line is field k, whose indices start at the smallest
    /// index seen at that position. Pass all files (train, validation, test) so that the layout covers every index.
    /// </summary>
    /// <param name="paths">The libFM files.</param>
    /// <returns>Options with <see cref="LibFmLoaderOptions.FieldStarts"/> and <see cref="LibFmLoaderOptions.FeatureCount"/> set.</returns>
    /// <exception cref="FormatException">Lines have different feature counts, or positions overlap.</exception>
    public LibFmLoaderOptions InferLibFmFields(params string[] paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (paths.Length == 0) throw new ArgumentException("Give at least one file.", nameof(paths));
        return LibFmLoader.InferFields(paths);
    }

    /// <summary>
    /// Loads a CSV file of categorical data with a header line: the label column (parsed as Single) and every other
    /// column as text, ready for <c>MapValueToKey</c> (key columns for NFM/AFM) or <c>OneHotEncoding</c> (vectors for
    /// ML.NET's FieldAwareFactorizationMachine). Double-quoted fields may contain the separator.
    /// </summary>
    /// <param name="path">The CSV file.</param>
    /// <param name="labelColumnName">Header name of the numeric label column. Default "Label".</param>
    /// <param name="separator">Field separator. Default ','.</param>
    /// <exception cref="FormatException">No header, no label column, a wrong field count or a non-numeric label (the message names file and line).</exception>
    public IDataView LoadCategoricalCsv(string path, string labelColumnName = "Label", char separator = ',')
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(labelColumnName);
        return CsvCategoricalLoader.Load(path, labelColumnName, separator);
    }
}
