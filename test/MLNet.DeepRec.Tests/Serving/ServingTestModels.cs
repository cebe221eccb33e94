using Microsoft.ML;
using MLNet.DeepRec.Tests.Sequential;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>Small, quickly trained models for the serving tests (batched Transform, loaded recommender).</summary>
internal static class ServingTestModels
{
    /// <summary>A SASRec model of the caller's own (to dispose).</summary>
    internal static SasRecTransformer TrainSasRec() => (SasRecTransformer)TrainSequential(SequentialTestModels.SasRec);

    /// <summary>A sequential model of the caller's own (to dispose): full cross-entropy, 2 epochs, L = 8, top 5.</summary>
    internal static SequentialTransformer TrainSequential(SequentialTestModels.Model model) =>
        model.Fit(SequenceTestData.Data, SequentialLoss.CrossEntropy, epochs: 2, o => { o.MaxLength = 8; o.TopK = 5; o.HistoryColumnName = "History"; });

    /// <summary>MF, GMF, MLP or NeuMF on "UserKey"/"ItemKey", a few epochs, small widths.</summary>
    internal static CollaborativeFilteringTransformer TrainCollaborative(string model, TestData.Keyed data, IDataView train, int epochs, int seed)
    {
        T Common<T>(T o) where T : CollaborativeTrainerOptions
        {
            o.UserIdColumnName = "UserKey"; o.ItemIdColumnName = "ItemKey"; o.NumberOfEpochs = epochs; o.Seed = seed; o.BatchSize = 512;
            return o;
        }
        var trainers = data.Context.DeepRec().Trainers;
        return model switch
        {
            "MF" => trainers.MatrixFactorization(Common(new BiasedMatrixFactorizationTrainer.Options { Factors = 8 })).Fit(train),
            "GMF" => trainers.Gmf(Common(new GmfTrainer.Options { Factors = 8 })).Fit(train),
            "MLP" => trainers.Mlp(Common(new MlpTrainer.Options { MlpLayers = [16, 8, 4] })).Fit(train),
            _ => trainers.NeuMF(Common(new NeuMFTrainer.Options { Factors = 4, MlpLayers = [16, 8, 4] })).Fit(train),
        };
    }
}
