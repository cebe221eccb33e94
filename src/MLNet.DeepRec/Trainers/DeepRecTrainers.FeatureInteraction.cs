using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec;

public sealed partial class DeepRecTrainers
{
    /// <summary>Neural Factorization Machine over one feature column (default "Features": a sparse libFM-style vector, or any known-size Vector&lt;Single&gt;).</summary>
    /// <param name="featureColumnName">The feature column.</param>
    /// <param name="labelColumnName">Label: Single for regression, Boolean for binary classification.</param>
    /// <param name="task">Regression (default) or binary classification.</param>
    /// <param name="factors">Embedding size.</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public NfmTrainer Nfm(string featureColumnName = "Features", string labelColumnName = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression,
        int factors = NfmTrainer.Defaults.Factors, int numberOfEpochs = NfmTrainer.Defaults.NumberOfEpochs) =>
        Nfm(new[] { featureColumnName }, labelColumnName, task, factors, numberOfEpochs);

    /// <summary>Neural Factorization Machine over several feature columns, each a field (key columns and/or known-size Vector&lt;Single&gt; columns, as ML.NET's FieldAwareFactorizationMachine takes).</summary>
    /// <param name="featureColumnNames">The feature columns (fields).</param>
    /// <param name="labelColumnName">Label: Single for regression, Boolean for binary classification.</param>
    /// <param name="task">Regression (default) or binary classification.</param>
    /// <param name="factors">Embedding size.</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public NfmTrainer Nfm(string[] featureColumnNames, string labelColumnName = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression,
        int factors = NfmTrainer.Defaults.Factors, int numberOfEpochs = NfmTrainer.Defaults.NumberOfEpochs) =>
        Nfm(new NfmTrainer.Options { FeatureColumnNames = featureColumnNames, LabelColumnName = labelColumnName, Task = task, Factors = factors, NumberOfEpochs = numberOfEpochs });

    /// <summary>Neural Factorization Machine with full options (NFM-0, i.e. FM, with <c>HiddenLayers = []</c>).</summary>
    public NfmTrainer Nfm(NfmTrainer.Options options) => new(Context, options);

    /// <summary>Attentional Factorization Machine over one feature column (default "Features").</summary>
    /// <param name="featureColumnName">The feature column.</param>
    /// <param name="labelColumnName">Label: Single for regression, Boolean for binary classification.</param>
    /// <param name="task">Regression (default) or binary classification.</param>
    /// <param name="factors">Embedding size.</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public AfmTrainer Afm(string featureColumnName = "Features", string labelColumnName = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression,
        int factors = AfmTrainer.Defaults.Factors, int numberOfEpochs = AfmTrainer.Defaults.NumberOfEpochs) =>
        Afm(new[] { featureColumnName }, labelColumnName, task, factors, numberOfEpochs);

    /// <summary>Attentional Factorization Machine over several feature columns, each a field.</summary>
    /// <param name="featureColumnNames">The feature columns (fields).</param>
    /// <param name="labelColumnName">Label: Single for regression, Boolean for binary classification.</param>
    /// <param name="task">Regression (default) or binary classification.</param>
    /// <param name="factors">Embedding size.</param>
    /// <param name="numberOfEpochs">Training epochs.</param>
    public AfmTrainer Afm(string[] featureColumnNames, string labelColumnName = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression,
        int factors = AfmTrainer.Defaults.Factors, int numberOfEpochs = AfmTrainer.Defaults.NumberOfEpochs) =>
        Afm(new AfmTrainer.Options { FeatureColumnNames = featureColumnNames, LabelColumnName = labelColumnName, Task = task, Factors = factors, NumberOfEpochs = numberOfEpochs });

    /// <summary>Attentional Factorization Machine with full options.</summary>
    public AfmTrainer Afm(AfmTrainer.Options options) => new(Context, options);
}
