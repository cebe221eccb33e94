using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>Options shared by the collaborative trainers (GMF, MLP, NeuMF, dot-product MF, LightGCN).</summary>
public abstract class CollaborativeTrainerOptions : DeepRecTrainerOptionsBase
{
    /// <summary>Key-typed user column (from <c>MapValueToKey</c>). Default "UserId".</summary>
    public string UserIdColumnName = "UserId";

    /// <summary>Key-typed item column (from <c>MapValueToKey</c>). Default "ItemId".</summary>
    public string ItemIdColumnName = "ItemId";

    /// <summary>
    /// Optional label column. Null (default): implicit feedback, every row is an observed interaction. Otherwise a
    /// numeric column: with <see cref="RatingThreshold"/> rows with label ≥ threshold are positives; without it labels
    /// must be 0 or 1. Rows that are not positives are never used as positives, and never drawn as sampled negatives.
    /// </summary>
    public string? LabelColumnName;

    /// <summary>Ratings at or above this value count as positive interactions (e.g. 4 on a 1–5 scale). Default null.</summary>
    public float? RatingThreshold;

    /// <summary>Loss. Default <see cref="CollaborativeLoss.BinaryCrossEntropy"/>.</summary>
    public CollaborativeLoss Loss = CollaborativeLoss.BinaryCrossEntropy;

    /// <summary>
    /// Per-occurrence L2 penalty on the user and item rows (embeddings and, where the model has them, biases) that each
    /// training sample looks up, added to the loss as λ · mean over the batch of their squared norms — biased MF's
    /// λ(‖p_u‖² + ‖q_i‖² + b_u² + b_i²) per rating (Koren et al. 2009; ML.NET's MatrixFactorization <c>Lambda</c>). A row is
    /// regularised as often as it is used, which suits rating prediction better than <see cref="DeepRecTrainerOptionsBase.L2Regularization"/>
    /// (weight decay on every parameter, which with Adam shrinks rarely seen rows as fast as frequent ones). In [0,
    /// <see cref="DeepRecTrainerOptionsBase.MaxRate"/>]. Default 0.
    /// </summary>
    public double EmbeddingRegularization;

    /// <summary>Largest <see cref="NegativesPerPositive"/> accepted: 1000 (each epoch holds positives × (1 + negatives) samples).</summary>
    public const int MaxNegativesPerPositive = 1000;

    /// <summary>Sampled negatives per observed interaction, redrawn every epoch, 1..<see cref="MaxNegativesPerPositive"/>. Default 4 (the NCF paper's best).</summary>
    public int NegativesPerPositive = 4;

    /// <summary>
    /// How training negatives are drawn. Default <see cref="NegativeSampling.Uniform"/>. A negative is never an item the
    /// user interacted with; a user whose items hold more than half of the drawing mass (uniform: who has seen more than
    /// half of the items) is drawn exactly from the items they have not seen, so sampling never fails while such an item
    /// exists. A user who has interacted with every item is an <see cref="InvalidOperationException"/> naming the user's
    /// key and id, raised before the first epoch (rather than a silent skip: such a user has no negatives to learn from,
    /// and is usually a data error such as a bot or a test account).
    /// </summary>
    public NegativeSampling NegativeSampling = NegativeSampling.Uniform;

    /// <summary>K of the validation metric NDCG@K used for early stopping, 1..<see cref="DeepRecTrainerOptionsBase.MaxCount"/>. Default 10.</summary>
    public int ValidationK = 10;

    /// <summary>Sampled negatives per validation interaction (sampled protocol), 1..<see cref="DeepRecTrainerOptionsBase.MaxCount"/>. Default 99.</summary>
    public int ValidationNegativesPerPositive = 99;

    /// <summary>
    /// Protocol of the validation metric: <see cref="RankingProtocol.Sampled"/> (default; each validation interaction
    /// against <see cref="ValidationNegativesPerPositive"/> random items the user has not seen, the NCF paper's protocol)
    /// or <see cref="RankingProtocol.FullRanking"/> (against every item the user has not seen in training, the LightGCN
    /// paper's protocol; each validation then scores the whole catalogue for every validation user). Use full ranking
    /// when the model will be judged by full-ranking metrics: early stopping then picks the epoch by that measure.
    /// Ranking losses only: with <see cref="CollaborativeLoss.SquaredError"/> validation is −RMSE and a non-default value throws.
    /// </summary>
    public RankingProtocol ValidationProtocol = RankingProtocol.Sampled;

    /// <summary>
    /// Continue training from this model (e.g. from <see cref="CollaborativeFilteringTransformer.LoadCheckpoint"/>) instead
    /// of a fresh initialisation. It must be of the same kind with the same sizes. Users and items are matched by their
    /// original ids (the KeyValues of <c>MapValueToKey</c>): known ones keep their embeddings, new ones get fresh ones,
    /// and the training interactions of the initial model stay "seen". Adam's state is resumed when the vocabularies
    /// are unchanged, otherwise it restarts. Default null.
    /// </summary>
    public CollaborativeFilteringTransformer? InitialModel;

    internal override void Validate()
    {
        base.Validate();
        CheckColumnName(UserIdColumnName, nameof(UserIdColumnName));
        CheckColumnName(ItemIdColumnName, nameof(ItemIdColumnName));
        CheckDistinctColumns((UserIdColumnName, nameof(UserIdColumnName)), (ItemIdColumnName, nameof(ItemIdColumnName)), (LabelColumnName, nameof(LabelColumnName)));
        CheckRange(NegativesPerPositive, 1, MaxNegativesPerPositive, nameof(NegativesPerPositive));
        CheckPenalty(EmbeddingRegularization, nameof(EmbeddingRegularization));
        CheckRange(ValidationK, 1, MaxCount, nameof(ValidationK));
        CheckRange(ValidationNegativesPerPositive, 1, MaxCount, nameof(ValidationNegativesPerPositive));
        if (RatingThreshold is float t && (float.IsNaN(t) || float.IsInfinity(t))) throw new ArgumentOutOfRangeException(nameof(RatingThreshold), t, "RatingThreshold must be finite.");
        if (RatingThreshold != null && LabelColumnName == null) throw new ArgumentException("RatingThreshold needs LabelColumnName.", nameof(RatingThreshold));
        if (Loss == CollaborativeLoss.SquaredError && LabelColumnName == null)
            throw new ArgumentException("Loss = SquaredError predicts the label: set LabelColumnName to the rating column.", nameof(LabelColumnName));
        if (Loss == CollaborativeLoss.SquaredError && RatingThreshold != null)
            throw new ArgumentException("RatingThreshold turns ratings into implicit feedback; it cannot be combined with Loss = SquaredError, which predicts the ratings.", nameof(RatingThreshold));
        if (!Enum.IsDefined(Loss)) throw new ArgumentOutOfRangeException(nameof(Loss), Loss, "Unknown loss.");
        if (!Enum.IsDefined(NegativeSampling)) throw new ArgumentOutOfRangeException(nameof(NegativeSampling), NegativeSampling, "Unknown negative sampling.");
        if (!Enum.IsDefined(ValidationProtocol)) throw new ArgumentOutOfRangeException(nameof(ValidationProtocol), ValidationProtocol, "Unknown ranking protocol.");
        if (Loss == CollaborativeLoss.SquaredError && ValidationProtocol != RankingProtocol.Sampled)
            throw new ArgumentException("ValidationProtocol chooses a ranking metric; with Loss = SquaredError validation is −RMSE of the ratings. Leave ValidationProtocol at its default.", nameof(ValidationProtocol));
    }
}

/// <summary>
/// The shared estimator of the collaborative models: reads key-typed user/item columns once, trains the model's module
/// with the shared <see cref="TrainingCore"/>, and returns a <see cref="CollaborativeFilteringTransformer"/>.
/// A model only supplies its module.
/// </summary>
/// <typeparam name="TOptions">The model's options.</typeparam>
public abstract class CollaborativeTrainerBase<TOptions> : DeepRecTrainerBase<TOptions, CollaborativeFilteringTransformer>,
    ITrainerEstimator<CollaborativeFilteringTransformer, CollaborativeModelParameters>
    where TOptions : CollaborativeTrainerOptions
{
    private protected CollaborativeTrainerBase(MLContext mlContext, TOptions options, string name) : base(mlContext, options, name) { }

    /// <summary>Builds a fresh, initialised module for the given key cardinalities (initialised from
    /// <see cref="PretrainedModels"/> where the model has them).</summary>
    private protected abstract CollaborativeModule CreateModule(int userCount, int itemCount);

    /// <summary>
    /// The trained models that <see cref="CreateModule"/> initialises the network from, with the option that gave each
    /// (NeuMF's pre-trained GMF and MLP); empty by default. Each must predict what this trainer predicts and have rows
    /// for the same users and items as this data, and a network built from them keeps its output layer rather than
    /// starting at the label prior.
    /// </summary>
    private protected virtual IReadOnlyList<(string Option, CollaborativeFilteringTransformer Model)> PretrainedModels => [];

    /// <summary>
    /// Trains on <paramref name="trainData"/>; when <paramref name="validationData"/> is given (same key-typed columns,
    /// e.g. the leave-one-out validation split), NDCG@<c>ValidationK</c> under <c>ValidationProtocol</c> (−RMSE for
    /// ratings) is computed after each epoch, drives early stopping, and the best epoch's weights are kept.
    /// </summary>
    protected override CollaborativeFilteringTransformer FitCore(IDataView trainData, IDataView? validationData)
    {
        var host = ((IHostEnvironment)Context).Register(Name);
        var o = TrainerOptions;
        var train = KeyedInteractions.FromDataView(trainData, o.UserIdColumnName, o.ItemIdColumnName, o.LabelColumnName);
        bool ratings = o.Loss == CollaborativeLoss.SquaredError;
        var (users, items, ratingValues) = ratings ? SelectRatings(train) : SelectPositives(train, o);
        if (users.Length == 0)
            throw new InvalidOperationException($"The training data has no usable {(ratings ? "rated" : "positive")} interactions (rows: {train.Count}). Check the '{o.UserIdColumnName}'/'{o.ItemIdColumnName}' columns{(o.LabelColumnName != null ? $" and label column '{o.LabelColumnName}'" : "")}.");

        using var ch = host.Start("Setup");
        var device = DeviceSelector.Select(Context, ch);
        var vocabulary = new KeyVocabulary(
            KeyVocabulary.Read(trainData.Schema[o.UserIdColumnName]),
            KeyVocabulary.Read(trainData.Schema[o.ItemIdColumnName]));

        // Rows only for the keys that occur (and, when continuing, for those the initial model knows): memory and model
        // size follow the data, not the key types' declared cardinality.
        var scoreKind = ratings ? DeepRecScoreKind.Regression : DeepRecScoreKind.BinaryClassification;
        var pretrainedModels = PretrainedModels;
        var givenModels = o.InitialModel is null ? pretrainedModels : pretrainedModels.Prepend((nameof(o.InitialModel), o.InitialModel));
        foreach (var (option, given) in givenModels)
        {
            if (given.ScoreKind != scoreKind)
                throw new ArgumentException($"{option} was trained {(given.ScoreKind == DeepRecScoreKind.Regression ? "on ratings (Loss = SquaredError)" : "on implicit feedback")}; this trainer's Loss = {o.Loss} {(ratings ? "predicts ratings" : "learns implicit feedback")}.", option);
        }
        int[] initialUsers = [], initialItems = [];
        if (o.InitialModel != null) (initialUsers, initialItems) = WarmStart.KnownKeys(o.InitialModel, vocabulary, train.UserCount, train.ItemCount);
        var userKeys = KeyCompaction.FromOccurring(train.UserCount, users, initialUsers);
        var itemKeys = KeyCompaction.FromOccurring(train.ItemCount, items, initialItems);
        var userRows = userKeys.ToRows(users);
        var itemRows = itemKeys.ToRows(items);
        if (!userKeys.IsIdentity || !itemKeys.IsIdentity)
            ch.Info(MessageSensitivity.None, "{0}", $"Embedding rows for the keys that occur: {userKeys.Count} of {train.UserCount} user keys, {itemKeys.Count} of {train.ItemCount} item keys; the others score as the unknown row.");

        if (!pretrainedModels.All(p => p.Model.UserKeys.SameAs(userKeys) && p.Model.ItemKeys.SameAs(itemKeys)))
            throw new ArgumentException($"The pre-trained {string.Join(" and ", pretrainedModels.Select(p => p.Model.ModelName))} models must be trained on the same interactions (the same users and items) as this data.");
        var module = SeededInitialization.Create(o.Seed, () => CreateModule(userKeys.Count, itemKeys.Count));
        bool pretrained = pretrainedModels.Count > 0;
        if (o.Loss == CollaborativeLoss.BinaryCrossEntropy && !pretrained && o.InitialModel == null)
            module.InitializeOutputBias(-Math.Log(o.NegativesPerPositive));
        // Ratings: the network starts by predicting the mean rating and learns the deviations from it.
        if (ratings && !pretrained && o.InitialModel == null)
            module.InitializeOutputBias(ratingValues!.Average(v => (double)v));
        var seenUsers = userRows;
        var seenItems = itemRows;
        OptimizerState? resumeState = null;
        if (o.InitialModel != null)
        {
            var warm = WarmStart.Apply(module, o.InitialModel, vocabulary, userKeys, itemKeys);
            (seenUsers, seenItems) = warm.SeenWith(userRows, itemRows);
            if (warm.SameVocabulary) resumeState = o.InitialModel.OptimizerState;
            ch.Info(MessageSensitivity.None, "{0}", $"Continuing from a {o.InitialModel.ModelName} model: {warm.KnownUsers} of {userKeys.Count} users and {warm.KnownItems} of {itemKeys.Count} items keep their embeddings.");
        }
        module.to(device);
        // A graph model (LightGCN) builds its graph from these interactions; it is released when Fit returns.
        using var interactions = module.UseInteractions(seenUsers, seenItems, device);

        var seen = new UserItemSet(seenUsers, seenItems, userKeys.Count, itemKeys.Count);
        var validation = validationData == null ? null
            : ratings ? RatingValidation(module, device, validationData, userKeys, itemKeys)
            : RankingValidation(module, device, validationData, userKeys, itemKeys, seen);

        TrainingReport report;
        OptimizerState? optimizerState;
        // int32 on the device (half of int64 at 20M rows); batches are widened per chunk.
        using (var u = tensor(userRows, dtype: int32, device: device))
        using (var i = tensor(itemRows, dtype: int32, device: device))
        {
            if (ratings)
            {
                using var labels = tensor(ratingValues!, dtype: float32, device: device);
                var source = new RatingBatchSource(u, i, labels, o.BatchSize);
                report = TrainingCore.Train(host, new CollaborativeObjective(module, o.Loss, o.EmbeddingRegularization), source, o, device, validation, resumeState, out optimizerState);
            }
            else
            {
                // The seen set is in row space (compacted keys): an error about a user names its key and original id instead.
                using var sampler = new TorchNegativeSampler(seen, o.NegativeSampling, device, row =>
                {
                    uint key = (uint)userKeys.ToKey(row);
                    return vocabulary.UserId(key) is { } id ? $"User key {key} ('{id}' in column '{o.UserIdColumnName}')" : $"User key {key} of column '{o.UserIdColumnName}'";
                });
                var source = new CollaborativeBatchSource(u, i, sampler, o.NegativesPerPositive, o.Loss, o.BatchSize);
                report = TrainingCore.Train(host, new CollaborativeObjective(module, o.Loss, o.EmbeddingRegularization), source, o, device, validation, resumeState, out optimizerState);
            }
        }
        module.SetUnknownRowsToMean();
        return new CollaborativeFilteringTransformer(Context, Name, module, device, o.UserIdColumnName, o.ItemIdColumnName, seen, vocabulary, report, optimizerState, userKeys, itemKeys,
            scoreKind);
    }

    /// <summary>NDCG@ValidationK under <see cref="CollaborativeTrainerOptions.ValidationProtocol"/> on the validation interactions (higher is better).</summary>
    private ValidationMetric RankingValidation(CollaborativeModule module, Device device, IDataView validationData, KeyCompaction userKeys, KeyCompaction itemKeys, UserItemSet seen)
    {
        var o = TrainerOptions;
        var declared = KeyedInteractions.FromDataView(validationData, o.UserIdColumnName, o.ItemIdColumnName);
        // Validation users/items without a row are skipped by the evaluator (counted, not scored).
        var valid = new KeyedInteractions(userKeys.ToRows(declared.Users), itemKeys.ToRows(declared.Items), userKeys.Count, itemKeys.Count);
        return ValidationMetric.TopKNdcg(new CollaborativeScorer(module, device), valid, seen, o.ValidationK, o.ValidationProtocol, o.ValidationNegativesPerPositive, o.Seed, userBatchSize: 256);
    }

    /// <summary>−RMSE of the predicted ratings on the validation rows whose user and item occur in training (higher is
    /// better); rows with an unknown user or item are left out, since their rows are only set to the mean after training.</summary>
    private ValidationMetric RatingValidation(CollaborativeModule module, Device device, IDataView validationData, KeyCompaction userKeys, KeyCompaction itemKeys)
    {
        var o = TrainerOptions;
        var declared = KeyedInteractions.FromDataView(validationData, o.UserIdColumnName, o.ItemIdColumnName, o.LabelColumnName);
        var userRows = userKeys.ToRows(declared.Users);
        var itemRows = itemKeys.ToRows(declared.Items);
        var keptUsers = new List<int>(declared.Count);
        var keptItems = new List<int>(declared.Count);
        var keptLabels = new List<float>(declared.Count);
        for (int n = 0; n < declared.Count; n++)
        {
            if (userRows[n] == 0 || itemRows[n] == 0) continue;
            keptUsers.Add(userRows[n]); keptItems.Add(itemRows[n]); keptLabels.Add(declared.Labels![n]);
        }
        if (keptUsers.Count == 0)
            throw new ArgumentException($"The validation data has no rated row whose user and item occur in the training data (rows: {declared.Count}).", nameof(validationData));
        var scorer = new CollaborativeScorer(module, device);
        int[] u = [.. keptUsers], i = [.. keptItems];
        float[] labels = [.. keptLabels];
        return new ValidationMetric("-RMSE", () =>
        {
            float[] predicted = scorer.ScoreCandidates(u, i, 1);
            double sum = 0;
            for (int n = 0; n < labels.Length; n++) sum += (predicted[n] - labels[n]) * (double)(predicted[n] - labels[n]);
            return -Math.Sqrt(sum / labels.Length);
        });
    }

    /// <summary>Every row with a user and an item key (ratings are the targets; the label reader already rejects
    /// non-finite values, naming the row).</summary>
    private static (int[] Users, int[] Items, float[]? Labels) SelectRatings(KeyedInteractions data)
    {
        var users = new List<int>(data.Count);
        var items = new List<int>(data.Count);
        var labels = new List<float>(data.Count);
        for (int n = 0; n < data.Count; n++)
        {
            if (data.Users[n] == 0 || data.Items[n] == 0) continue; // missing key: nothing to learn from
            users.Add(data.Users[n]); items.Add(data.Items[n]); labels.Add(data.Labels![n]);
        }
        return ([.. users], [.. items], [.. labels]);
    }

    /// <summary>Adds <c>Score</c>, <c>Probability</c> (Single) and <c>PredictedLabel</c> (Boolean), or for
    /// <see cref="CollaborativeLoss.SquaredError"/> only <c>Score</c> (the predicted rating), after checking the key-typed
    /// input columns.</summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        CheckKeyColumn(inputSchema, TrainerOptions.UserIdColumnName, "user");
        CheckKeyColumn(inputSchema, TrainerOptions.ItemIdColumnName, "item");
        return CollaborativeFilteringTransformer.AppendOutputColumns(Context, inputSchema,
            TrainerOptions.Loss == CollaborativeLoss.SquaredError ? DeepRecScoreKind.Regression : DeepRecScoreKind.BinaryClassification);
    }

    private static void CheckKeyColumn(SchemaShape schema, string name, string role)
    {
        var found = schema.Where(c => c.Name == name).ToArray();
        if (found.Length == 0)
            throw new ArgumentException($"The {role} column '{name}' was not found in the input schema.");
        var col = found[^1];
        if (!col.IsKey || col.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentException($"The {role} column '{name}' must be a scalar key-typed column (use mlContext.Transforms.Conversion.MapValueToKey), but it is {col.ItemType}{(col.Kind != SchemaShape.Column.VectorKind.Scalar ? " vector" : "")}.");
    }

    private static (int[] Users, int[] Items, float[]? Labels) SelectPositives(KeyedInteractions data, CollaborativeTrainerOptions o)
    {
        // Implicit feedback without missing keys, the common large case: every row is a positive, no copy.
        if (data.Labels == null && !data.Users.AsSpan().Contains(0) && !data.Items.AsSpan().Contains(0)) return (data.Users, data.Items, null);
        var users = new List<int>(data.Count);
        var items = new List<int>(data.Count);
        for (int n = 0; n < data.Count; n++)
        {
            if (data.Users[n] == 0 || data.Items[n] == 0) continue; // missing key: nothing to learn from
            if (data.Labels != null)
            {
                float label = data.Labels[n];
                bool positive;
                if (o.RatingThreshold is float threshold) positive = label >= threshold;
                else if (label == 0f || label == 1f) positive = label == 1f;
                else throw new InvalidOperationException(
                    $"Label column '{o.LabelColumnName}' has value {label} at row {n}; without RatingThreshold labels must be 0 or 1. Set RatingThreshold to treat ratings as implicit feedback, or Loss = CollaborativeLoss.SquaredError to predict the ratings.");
                if (!positive) continue;
            }
            users.Add(data.Users[n]);
            items.Add(data.Items[n]);
        }
        return (users.ToArray(), items.ToArray(), null);
    }

    /// <summary>Key-typed user and item columns (the validation data's with the training data's cardinalities), and
    /// the label column when one is set.</summary>
    private protected override void CheckSchema(DataViewSchema trainSchema, DataViewSchema? validationSchema)
    {
        var o = TrainerOptions;
        ColumnChecks.TrainingAndValidationKeys(trainSchema, validationSchema, o.UserIdColumnName, o.ItemIdColumnName);
        if (o.LabelColumnName != null) KeyedInteractions.RequireColumn(trainSchema, o.LabelColumnName, "label");
    }
}
