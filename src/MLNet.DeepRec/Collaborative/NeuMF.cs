using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using Microsoft.ML;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models
{
    /// <summary>
    /// Neural Matrix Factorization (He et al. 2017, §3.4): a GMF branch and an MLP branch with separate embeddings, fused
    /// by one output layer: logit = hᵀ[p_u ⊙ q_i ; MLP([p'_u; q'_i])].
    /// </summary>
    internal sealed class NeuMFModule : CollaborativeModule
    {
        public NeuMFModule(int userCount, int itemCount, int factors, IReadOnlyList<int> mlpLayers) : base(CollaborativeModels.NeuMF.Name, userCount, itemCount)
        {
            gmf = new GmfModule(userCount, itemCount, factors, withOutputLayer: false);
            mlp = new MlpModule(userCount, itemCount, mlpLayers, withOutputLayer: false);
            output = nn.Linear(factors + mlpLayers[^1], 1);
            RegisterComponents();
        }

        private readonly GmfModule gmf;
        public GmfModule Gmf => gmf;
        private readonly MlpModule mlp;
        public MlpModule Mlp => mlp;
        private readonly Linear output;
        public Linear Output => output;

        public override Tensor forward(Tensor users, Tensor items) =>
            Output.call(cat(new[] { Gmf.Interaction(users, items), Mlp.Hidden(users, items) }, 1)).squeeze(-1);

        public override string ExportOnnx(OnnxGraphBuilder g, string users, string items)
        {
            string fused = g.Concat(1, Gmf.InteractionOnnx(g, users, items, "neumf.gmf."), Mlp.HiddenOnnx(g, users, items, "neumf.mlp."));
            return g.Reshape(LinearOnnx(g, "neumf.output", Output, fused), new long[] { -1 });
        }

        /// <summary>The GMF branch as one MatMul and the MLP branch's tower per pair, each with its part of the output layer.</summary>
        public override string ExportAllItemsOnnx(OnnxGraphBuilder g, string users)
        {
            long f = Gmf.Factors;
            Tensor w = Output.weight!; // [1, f + h]
            string gmf = Gmf.AllItemsDotOnnx(g, users, w.narrow(1, 0, f), "neumf.gmf.");
            string hidden = Mlp.AllItemsHiddenOnnx(g, users, "neumf.mlp.");
            string mlp = g.Reshape(g.MatMul(hidden, g.AddWeights("neumf.output_mlp_t", w.narrow(1, f, w.shape[1] - f).t())), [-1, ItemCount]);
            return g.Add(g.Add(gmf, mlp), g.AddWeights("neumf.output_bias", Output.bias!));
        }

        /// <summary>
        /// NCF §3.4.1 pre-training: copy the embeddings and tower of trained GMF and MLP models and build the output layer
        /// as [α·h_GMF ; (1−α)·h_MLP], with bias α·b_GMF + (1−α)·b_MLP.
        /// </summary>
        public void InitializeFrom(GmfModule gmf, MlpModule mlp, double alpha)
        {
            using var _ = no_grad();
            Gmf.UserEmbedding.Weight.copy_(gmf.UserEmbedding.Weight);
            Gmf.ItemEmbedding.Weight.copy_(gmf.ItemEmbedding.Weight);
            Mlp.UserEmbedding.Weight.copy_(mlp.UserEmbedding.Weight);
            Mlp.ItemEmbedding.Weight.copy_(mlp.ItemEmbedding.Weight);
            foreach (var (target, source) in Mlp.TowerLinears().Zip(mlp.TowerLinears()))
            {
                target.weight!.copy_(source.weight!);
                target.bias!.copy_(source.bias!);
            }
            using var scope = NewDisposeScope(); // a scope keeps temporaries referenced during native calls (docs/reliability.md, section 5)
            using Scalar gmfShare = alpha, mlpShare = 1 - alpha;
            Output.weight!.copy_(cat(new[] { gmf.Output.weight!.mul(gmfShare), mlp.Output.weight!.mul(mlpShare) }, 1));
            Output.bias!.copy_(gmf.Output.bias!.mul(gmfShare).Plus(mlp.Output.bias!.mul(mlpShare)));
        }

        public override void InitializeOutputBias(double logit)
        {
            using (no_grad()) output.bias!.fill_(LiveScalars.Of(logit)); // a live Scalar (see LiveScalars)
        }

        public override IReadOnlyDictionary<string, int[]> HyperParameters =>
            new Dictionary<string, int[]> { [CollaborativeModels.Factors.Name] = [Gmf.Factors], [CollaborativeModels.Layers.Name] = Mlp.Layers.ToArray() };
    }
}

namespace MLNet.DeepRec.Trainers
{
    /// <summary>Neural Matrix Factorization (He et al. 2017), optionally initialised from trained GMF and MLP models.</summary>
    public sealed class NeuMFTrainer : CollaborativeTrainerBase<NeuMFTrainer.Options>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload.</summary>
        public static class Defaults
        {
            /// <summary>Latent factors of the GMF branch: 8.</summary>
            public const int Factors = 8;

            /// <summary>Tower widths of the MLP branch {64, 32, 16, 8}; a fresh array each call.</summary>
            public static int[] MlpLayers => [64, 32, 16, 8];

            /// <summary>Weight of the GMF branch in the pre-trained output layer: 0.5.</summary>
            public const double PretrainAlpha = 0.5;
            /// <summary>Default number of epochs.</summary>
            public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
        }

        /// <summary>NeuMF options.</summary>
        public sealed class Options : CollaborativeTrainerOptions
        {
            /// <summary>Latent factors of the GMF branch, 1..<see cref="Training.DeepRecTrainerOptionsBase.MaxWidth"/>. Default 8.</summary>
            public int Factors = Defaults.Factors;

            /// <summary>Widths of the MLP branch's tower (first = concatenated embedding width, even), as <see cref="MlpTrainer.Options.MlpLayers"/>. Default {64, 32, 16, 8}.</summary>
            public int[] MlpLayers = Defaults.MlpLayers;

            /// <summary>
            /// A trained GMF model to initialise the GMF branch from (NCF §3.4.1 pre-training). Must be given together with
            /// <see cref="PretrainedMlp"/>, trained on the same key types with the same <see cref="Factors"/>. Default null.
            /// </summary>
            public CollaborativeFilteringTransformer? PretrainedGmf;

            /// <summary>A trained MLP model to initialise the MLP branch from (same <see cref="MlpLayers"/>). Default null.</summary>
            public CollaborativeFilteringTransformer? PretrainedMlp;

            /// <summary>Weight of the GMF branch in the pre-trained output layer (the paper's α). Default 0.5.</summary>
            public double PretrainAlpha = Defaults.PretrainAlpha;

            internal override void Validate()
            {
                base.Validate();
                CheckWidth(Factors, nameof(Factors));
                MlpTrainer.Options.ValidateLayers(MlpLayers, nameof(MlpLayers));
                if ((PretrainedGmf == null) != (PretrainedMlp == null))
                    throw new ArgumentException("PretrainedGmf and PretrainedMlp must be given together.");
                if (!(PretrainAlpha >= 0 && PretrainAlpha <= 1)) throw new ArgumentOutOfRangeException(nameof(PretrainAlpha), PretrainAlpha, "PretrainAlpha must be in [0, 1].");
            }
        }

        internal NeuMFTrainer(MLContext mlContext, Options options) : base(mlContext, options, CollaborativeModels.NeuMF.Name) { }

        /// <summary>The pre-trained GMF and MLP (given together or not at all, as <see cref="Options.Validate"/> checks).</summary>
        private protected override IReadOnlyList<(string Option, CollaborativeFilteringTransformer Model)> PretrainedModels =>
            TrainerOptions is { PretrainedGmf: { } gmf, PretrainedMlp: { } mlp } ? [(nameof(Options.PretrainedGmf), gmf), (nameof(Options.PretrainedMlp), mlp)] : [];

        private protected override CollaborativeModule CreateModule(int userCount, int itemCount)
        {
            var module = new NeuMFModule(userCount, itemCount, TrainerOptions.Factors, TrainerOptions.MlpLayers);
            if (TrainerOptions.PretrainedGmf != null && TrainerOptions.PretrainedMlp != null)
            {
                if (TrainerOptions.PretrainedGmf.Module is not GmfModule gmf || gmf.Factors != TrainerOptions.Factors)
                    throw new ArgumentException($"PretrainedGmf must be a GMF model with {TrainerOptions.Factors} factors.", nameof(TrainerOptions.PretrainedGmf));
                if (TrainerOptions.PretrainedMlp.Module is not MlpModule mlp || !mlp.Layers.SequenceEqual(TrainerOptions.MlpLayers))
                    throw new ArgumentException($"PretrainedMlp must be an MLP model with layers {{{string.Join(", ", TrainerOptions.MlpLayers)}}}.", nameof(TrainerOptions.PretrainedMlp));
                if (gmf.UserCount != userCount || gmf.ItemCount != itemCount || mlp.UserCount != userCount || mlp.ItemCount != itemCount)
                    throw new ArgumentException("The pre-trained models were trained on different user/item key types than this data.");
                module.InitializeFrom(gmf, mlp, TrainerOptions.PretrainAlpha);
            }
            return module;
        }
    }
}
