using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;

namespace MLNet.DeepRec.Trainers;

/// <summary>NCF's Multi-Layer Perceptron model trained on implicit feedback.</summary>
public sealed class MlpTrainer : CollaborativeTrainerBase<MlpTrainer.Options>
{
    /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload.</summary>
    public static class Defaults
    {
        /// <summary>Tower widths {64, 32, 16, 8} (the NCF paper's 3-layer tower, 8 predictive factors); a fresh array each call.</summary>
        public static int[] MlpLayers => [64, 32, 16, 8];
        /// <summary>Default number of epochs.</summary>
        public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
    }

    /// <summary>MLP options.</summary>
    public sealed class Options : CollaborativeTrainerOptions
    {
        /// <summary>
        /// Widths of the tower, first to last. The first is the concatenated embedding width (user and item embeddings
        /// are each half of it), so it must be even. 1..<see cref="Training.DeepRecTrainerOptionsBase.MaxLayers"/> widths, each
        /// 1..<see cref="Training.DeepRecTrainerOptionsBase.MaxWidth"/>. Default {64, 32, 16, 8} (the paper's 3-layer tower, 8 predictive factors).
        /// </summary>
        public int[] MlpLayers = Defaults.MlpLayers;

        internal override void Validate()
        {
            base.Validate();
            ValidateLayers(MlpLayers, nameof(MlpLayers));
        }

        internal static void ValidateLayers(int[]? layers, string name)
        {
            CheckWidths(layers, name, allowEmpty: false);
            if (layers![0] % 2 != 0) throw new ArgumentOutOfRangeException(name, layers[0], "The first layer width must be even (user and item embeddings each take half).");
        }
    }

    internal MlpTrainer(MLContext mlContext, Options options) : base(mlContext, options, CollaborativeModels.Mlp.Name) { }

    private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
        new MlpModule(userCount, itemCount, TrainerOptions.MlpLayers);
}
