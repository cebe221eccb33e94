namespace MLNet.DeepRec.Evaluation;

/// <summary>
/// A trained recommender that can score (user, item) key pairs in batches. Keys are ML.NET key values: 1-based, with 0
/// meaning "unknown". Implemented by every collaborative model of the library; the top-K evaluator and the
/// recommendation API only need this contract.
/// </summary>
public interface IItemScorer
{
    /// <summary>Number of user keys the model knows (valid user keys are 1..UserCount).</summary>
    int UserCount { get; }

    /// <summary>Number of item keys the model knows (valid item keys are 1..ItemCount).</summary>
    int ItemCount { get; }

    /// <summary>
    /// Scores <paramref name="candidatesPerUser"/> candidate items for each user: <paramref name="items"/> is row-major
    /// [users.Length, candidatesPerUser]. Returns scores in the same layout; higher means more relevant.
    /// </summary>
    float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser);

    /// <summary>
    /// Scores every item key 1..ItemCount for each user. Returns row-major [users.Length, ItemCount] where column j holds
    /// the score of item key j + 1.
    /// </summary>
    float[] ScoreAllItems(int[] users);
}
