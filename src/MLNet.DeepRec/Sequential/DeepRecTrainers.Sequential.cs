using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec;

public sealed partial class DeepRecTrainers
{
    /// <summary>
    /// SASRec next-item recommender with standard column names: trains on an interaction log with key-typed "UserId" and
    /// "ItemId" columns and an optional "Timestamp"; the model scores rows with a "History" vector of item keys and a
    /// candidate "ItemId".
    /// </summary>
    /// <param name="userIdColumnName">Key-typed user column of the training log.</param>
    /// <param name="itemIdColumnName">Key-typed item column (training events; candidate item when scoring).</param>
    /// <param name="historyColumnName">Vector-of-item-keys history column read when scoring.</param>
    /// <param name="loss">Training loss (default: the paper's BCE with one sampled negative).</param>
    /// <param name="maxLength">Maximum sequence length.</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public SasRecTrainer SasRec(string userIdColumnName = "UserId", string itemIdColumnName = "ItemId", string historyColumnName = "History",
        SasRecLoss loss = SasRecLoss.BinaryCrossEntropy, int maxLength = SasRecTrainer.Defaults.MaxLength, int numberOfEpochs = SasRecTrainer.Defaults.NumberOfEpochs) =>
        SasRec(new SasRecTrainer.Options
        {
            UserIdColumnName = userIdColumnName, ItemIdColumnName = itemIdColumnName, HistoryColumnName = historyColumnName,
            Loss = loss, MaxLength = maxLength, NumberOfEpochs = numberOfEpochs,
        });

    /// <summary>SASRec next-item recommender with full options.</summary>
    /// <param name="options">The options.</param>
    public SasRecTrainer SasRec(SasRecTrainer.Options options) => new(Context, options);
}
