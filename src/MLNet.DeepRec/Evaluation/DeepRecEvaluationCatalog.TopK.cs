using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;

namespace MLNet.DeepRec;

public sealed partial class DeepRecEvaluationCatalog
{
    /// <summary>
    /// Top-K evaluation of <paramref name="scorer"/> on <paramref name="testData"/>: reads the key-typed user and item
    /// columns (<see cref="TopKEvaluationOptions.UserIdColumnName"/>, <see cref="TopKEvaluationOptions.ItemIdColumnName"/>) of both
    /// views, builds each user's seen items from <paramref name="trainData"/> and ranks the held-out items under
    /// <see cref="TopKEvaluationOptions.Protocol"/> (see <see cref="TopKEvaluator"/>). Both views must use the key
    /// mapping the model was trained with (the same fitted <c>MapValueToKey</c>).
    /// </summary>
    /// <param name="scorer">The model.</param>
    /// <param name="testData">Held-out interactions.</param>
    /// <param name="trainData">Training interactions (their items are excluded per user).</param>
    /// <param name="options">Options; null for the defaults (Sampled, 99 negatives, K = 10).</param>
    /// <returns>The metrics, whose <see cref="TopKMetrics.ToString"/> names the protocol.</returns>
    public TopKMetrics EvaluateTopK(IItemScorer scorer, IDataView testData, IDataView trainData, TopKEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(testData);
        ArgumentNullException.ThrowIfNull(trainData);
        options ??= new TopKEvaluationOptions();
        options.Validate();
        var test = KeyedInteractions.FromDataView(testData, options.UserIdColumnName, options.ItemIdColumnName);
        var train = KeyedInteractions.FromDataView(trainData, options.UserIdColumnName, options.ItemIdColumnName);
        return TopKEvaluator.Evaluate(scorer, test, new UserItemSet(train), options);
    }

    /// <summary>The popularity baseline fitted on <paramref name="trainData"/>: scores are item training frequencies.</summary>
    /// <param name="trainData">Training interactions with key-typed user and item columns.</param>
    /// <param name="userIdColumnName">Key-typed user column (its cardinality is the scorer's user count).</param>
    /// <param name="itemIdColumnName">Key-typed item column.</param>
    public PopularityScorer PopularityBaseline(IDataView trainData, string userIdColumnName = "UserId", string itemIdColumnName = "ItemId")
    {
        ArgumentNullException.ThrowIfNull(trainData);
        return new PopularityScorer(KeyedInteractions.FromDataView(trainData, userIdColumnName, itemIdColumnName));
    }
}
