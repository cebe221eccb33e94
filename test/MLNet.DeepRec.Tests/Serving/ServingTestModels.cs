using Microsoft.ML;
using MLNet.DeepRec.Tests.Sequential;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>Small, quickly trained models for the serving tests (batched Transform, loaded recommender).</summary>
internal static class ServingTestModels
{
    /// <summary>A SASRec model of the caller's own (SasRecServingTests' shared one is disposed when that fixture ends).</summary>
    internal static SasRecTransformer TrainSasRec()
    {
        var o = SasRecTrainingTests.Small(SasRecLoss.CrossEntropy, epochs: 2);
        o.MaxLength = 8; o.TopK = 5; o.HistoryColumnName = "History";
        return SequenceTestData.Data.Context.DeepRec().Trainers.SasRec(o).Fit(SequenceTestData.Data.Train);
    }

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
