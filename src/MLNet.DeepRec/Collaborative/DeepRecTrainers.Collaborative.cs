using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec;

public sealed partial class DeepRecTrainers
{
    /// <summary>Neural Matrix Factorization with standard column names (key-typed "UserId"/"ItemId").</summary>
    /// <param name="userIdColumnName">Key-typed user column.</param>
    /// <param name="itemIdColumnName">Key-typed item column.</param>
    /// <param name="labelColumnName">Optional 0/1 label column (null: every row is a positive interaction).</param>
    /// <param name="factors">GMF latent factors.</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public NeuMFTrainer NeuMF(string userIdColumnName = "UserId", string itemIdColumnName = "ItemId", string? labelColumnName = null,
        int factors = NeuMFTrainer.Defaults.Factors, int numberOfEpochs = NeuMFTrainer.Defaults.NumberOfEpochs) =>
        NeuMF(new NeuMFTrainer.Options { UserIdColumnName = userIdColumnName, ItemIdColumnName = itemIdColumnName, LabelColumnName = labelColumnName, Factors = factors, NumberOfEpochs = numberOfEpochs });

    /// <summary>Neural Matrix Factorization with full options.</summary>
    public NeuMFTrainer NeuMF(NeuMFTrainer.Options options) => new(Context, options);

    /// <summary>Generalized Matrix Factorization with standard column names.</summary>
    /// <param name="userIdColumnName">Key-typed user column.</param>
    /// <param name="itemIdColumnName">Key-typed item column.</param>
    /// <param name="labelColumnName">Optional 0/1 label column (null: every row is a positive interaction).</param>
    /// <param name="factors">Latent factors.</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public GmfTrainer Gmf(string userIdColumnName = "UserId", string itemIdColumnName = "ItemId", string? labelColumnName = null,
        int factors = GmfTrainer.Defaults.Factors, int numberOfEpochs = GmfTrainer.Defaults.NumberOfEpochs) =>
        Gmf(new GmfTrainer.Options { UserIdColumnName = userIdColumnName, ItemIdColumnName = itemIdColumnName, LabelColumnName = labelColumnName, Factors = factors, NumberOfEpochs = numberOfEpochs });

    /// <summary>Generalized Matrix Factorization with full options.</summary>
    public GmfTrainer Gmf(GmfTrainer.Options options) => new(Context, options);

    /// <summary>NCF's MLP model with standard column names.</summary>
    /// <param name="userIdColumnName">Key-typed user column.</param>
    /// <param name="itemIdColumnName">Key-typed item column.</param>
    /// <param name="labelColumnName">Optional 0/1 label column (null: every row is a positive interaction).</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public MlpTrainer Mlp(string userIdColumnName = "UserId", string itemIdColumnName = "ItemId", string? labelColumnName = null, int numberOfEpochs = MlpTrainer.Defaults.NumberOfEpochs) =>
        Mlp(new MlpTrainer.Options { UserIdColumnName = userIdColumnName, ItemIdColumnName = itemIdColumnName, LabelColumnName = labelColumnName, NumberOfEpochs = numberOfEpochs });

    /// <summary>NCF's MLP model with full options.</summary>
    public MlpTrainer Mlp(MlpTrainer.Options options) => new(Context, options);

    /// <summary>Dot-product matrix factorization (BCE or BPR) with standard column names.</summary>
    /// <param name="userIdColumnName">Key-typed user column.</param>
    /// <param name="itemIdColumnName">Key-typed item column.</param>
    /// <param name="labelColumnName">Optional 0/1 label column (null: every row is a positive interaction).</param>
    /// <param name="factors">Latent factors.</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public BiasedMatrixFactorizationTrainer MatrixFactorization(string userIdColumnName = "UserId", string itemIdColumnName = "ItemId", string? labelColumnName = null,
        int factors = BiasedMatrixFactorizationTrainer.Defaults.Factors, int numberOfEpochs = BiasedMatrixFactorizationTrainer.Defaults.NumberOfEpochs) =>
        MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { UserIdColumnName = userIdColumnName, ItemIdColumnName = itemIdColumnName, LabelColumnName = labelColumnName, Factors = factors, NumberOfEpochs = numberOfEpochs });

    /// <summary>Dot-product matrix factorization with full options.</summary>
    public BiasedMatrixFactorizationTrainer MatrixFactorization(BiasedMatrixFactorizationTrainer.Options options) => new(Context, options);

    /// <summary>LightGCN with standard column names (key-typed "UserId"/"ItemId") and the paper's defaults.</summary>
    /// <param name="userIdColumnName">Key-typed user column.</param>
    /// <param name="itemIdColumnName">Key-typed item column.</param>
    /// <param name="labelColumnName">Optional 0/1 label column (null: every row is a positive interaction).</param>
    /// <param name="factors">Embedding size.</param>
    /// <param name="numberOfLayers">Propagation layers K.</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public LightGcnTrainer LightGcn(string userIdColumnName = "UserId", string itemIdColumnName = "ItemId", string? labelColumnName = null,
        int factors = LightGcnTrainer.Defaults.Factors, int numberOfLayers = LightGcnTrainer.Defaults.NumberOfLayers, int numberOfEpochs = LightGcnTrainer.Defaults.NumberOfEpochs) =>
        LightGcn(new LightGcnTrainer.Options { UserIdColumnName = userIdColumnName, ItemIdColumnName = itemIdColumnName, LabelColumnName = labelColumnName, Factors = factors, NumberOfLayers = numberOfLayers, NumberOfEpochs = numberOfEpochs });

    /// <summary>LightGCN with full options.</summary>
    public LightGcnTrainer LightGcn(LightGcnTrainer.Options options) => new(Context, options);
}
