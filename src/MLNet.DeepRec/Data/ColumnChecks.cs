using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Data;

/// <summary>
/// The checks of key-typed input columns that trainers (at <c>Fit</c>) and transformers (when they bind to a schema)
/// share, so that the rule and its message exist once. Every failure is an <see cref="ArgumentException"/> naming the
/// column and saying what to do.
/// </summary>
internal static class ColumnChecks
{
    /// <summary>
    /// Checks that <paramref name="column"/> is a scalar UInt32 key column and, when <paramref name="expectedCount"/> is
    /// given, that its cardinality is that; returns the cardinality.
    /// </summary>
    /// <param name="schema">The schema to look in.</param>
    /// <param name="column">Column name.</param>
    /// <param name="role">What the column is for ("user", "item", …), for the message.</param>
    /// <param name="expectedCount">The cardinality the model was trained on (or the training data has), or null.</param>
    /// <param name="expectedFrom">Where <paramref name="expectedCount"/> comes from ("the training data", "the model").</param>
    public static int Key(DataViewSchema schema, string column, string role, int? expectedCount = null, string expectedFrom = "the model")
    {
        var col = KeyedInteractions.RequireColumn(schema, column, role);
        if (col.Type is VectorDataViewType)
            throw new ArgumentException($"The {role} column '{column}' must be a scalar key column (one key per row, from mlContext.Transforms.Conversion.MapValueToKey), but it is a vector ({col.Type}).", nameof(column));
        return CheckKeyType(col.Type, col.Type, column, role, expectedCount, expectedFrom, "must be key-typed (use mlContext.Transforms.Conversion.MapValueToKey), but it is");
    }

    /// <summary>
    /// Checks the user and item key columns of training and validation data (scalar UInt32 keys) and that the validation
    /// data was keyed by the same fitted mapping (the same cardinalities); returns the training cardinalities.
    /// </summary>
    public static (int Users, int Items) TrainingAndValidationKeys(DataViewSchema train, DataViewSchema? validation, string userIdColumnName, string itemIdColumnName)
    {
        int users = Key(train, userIdColumnName, "user"), items = Key(train, itemIdColumnName, "item");
        if (validation == null) return (users, items);
        int validUsers = Key(validation, userIdColumnName, "validation data's user"), validItems = Key(validation, itemIdColumnName, "validation data's item");
        if (validUsers != users || validItems != items)
            throw new ArgumentException($"The validation data's key types ({validUsers} users, {validItems} items) differ from the training data's ({users}, {items}) " +
                $"in columns '{userIdColumnName}'/'{itemIdColumnName}'; transform both with the same fitted MapValueToKey.", nameof(validation));
        SameKeyValues(train, validation, userIdColumnName, "user");
        SameKeyValues(train, validation, itemIdColumnName, "item");
        return (users, items);
    }

    /// <summary>
    /// Two key columns of one cardinality can still mean different ids (a MapValueToKey fitted separately on each data
    /// view): where both carry KeyValues they must agree, or every validation metric would silently score other users.
    /// </summary>
    private static void SameKeyValues(DataViewSchema train, DataViewSchema validation, string column, string role)
    {
        var trained = KeyVocabulary.Read(train[column]);
        var validated = KeyVocabulary.Read(validation[column]);
        if (trained is null || validated is null) return;
        for (int n = 0; n < trained.Count && n < validated.Count; n++)
        {
            if (!string.Equals(trained[n], validated[n], StringComparison.Ordinal))
                throw new ArgumentException($"The validation data's {role} key {n + 1} in column '{column}' is '{validated[n]}', the training data's is '{trained[n]}': " +
                    "the two were mapped by different MapValueToKey fits. Transform both with the same fitted key mapping (fit it on all the data first, or on the training data).", nameof(validation));
        }
    }

    /// <summary>
    /// Checks that <paramref name="column"/> is a vector (known or variable size) of UInt32 keys and, when
    /// <paramref name="expectedCount"/> is given, that the key cardinality is that; returns the cardinality.
    /// </summary>
    public static int KeyVector(DataViewSchema schema, string column, string role, int? expectedCount = null, string expectedFrom = "the model")
    {
        var col = KeyedInteractions.RequireColumn(schema, column, role);
        if (col.Type is not VectorDataViewType vector)
            throw new ArgumentException($"The {role} column '{column}' must be a vector of keys (MapValueToKey on a vector column, or DeepRec().Data.GroupSequences), but it is {col.Type}, a scalar.", nameof(column));
        return CheckKeyType(vector.ItemType, col.Type, column, role, expectedCount, expectedFrom,
            "must be a vector of keys (use mlContext.Transforms.Conversion.MapValueToKey, or DeepRec().Data.GroupSequences), but it is");
    }

    private static int CheckKeyType(DataViewType type, DataViewType columnType, string column, string role, int? expectedCount, string expectedFrom, string requirement)
    {
        // A plain integer column is the usual mistake, and ML.NET's ONNX scoring would accept it: its raw values would be
        // read as keys, where 0 means "unknown" and key k is the k-th id of a fitted mapping, so the ids would silently
        // mean other users or items.
        if (type is not KeyDataViewType key)
            throw new ArgumentException($"The {role} column '{column}' {requirement} {columnType}." +
                (type is NumberDataViewType ? $" {type} is a plain number, not a key type: raw ids are not keys (key 0 means unknown, key k is the k-th id of the fitted mapping)." : ""),
                nameof(column));
        if (key.RawType != typeof(uint))
            throw new ArgumentException($"The {role} column '{column}' must be a key of UInt32 (MapValueToKey's default), but it is {columnType}.", nameof(column));
        if (key.Count == 0 || key.Count > int.MaxValue - 1)
            throw new ArgumentException($"The {role} column '{column}' has an unsupported key cardinality {key.Count}.", nameof(column));
        if (expectedCount is int expected && (int)key.Count != expected)
            throw new ArgumentException(
                $"The {role} column '{column}' has {key.Count} keys, but {expectedFrom} has {expected}: transform every data set with the same fitted MapValueToKey as the training data.", nameof(column));
        return (int)key.Count;
    }
}
