using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using Microsoft.ML;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models
{
    /// <summary>
    /// Generalized Matrix Factorization (He et al. 2017, NCF §3.2): logit = hᵀ(p_u ⊙ q_i) + b.
    /// </summary>
    internal sealed class GmfModule : CollaborativeModule
    {
        public GmfModule(int userCount, int itemCount, int factors, bool withOutputLayer = true) : base(CollaborativeModels.Gmf.Name, userCount, itemCount)
        {
            Factors = factors;
            user_embedding = UserTable(userCount, factors);
            item_embedding = ItemTable(itemCount, factors);
            // As a NeuMF branch the model has no output layer of its own (an unused parameter would still be decayed).
            if (withOutputLayer) output = nn.Linear(factors, 1);
            RegisterComponents();
        }

        public int Factors { get; }
        private readonly EmbeddingTable user_embedding;
        public EmbeddingTable UserEmbedding => user_embedding;
        private readonly EmbeddingTable item_embedding;
        public EmbeddingTable ItemEmbedding => item_embedding;
        private readonly Linear? output;
        public Linear Output => output ?? throw new InvalidOperationException("This module is a NeuMF branch without an output layer.");

        /// <summary>The element-wise product p_u ⊙ q_i, NeuMF's GMF branch.</summary>
        public Tensor Interaction(Tensor users, Tensor items) => UserEmbedding.call(users) * ItemEmbedding.call(items);

        public override Tensor forward(Tensor users, Tensor items) => Output.call(Interaction(users, items)).squeeze(-1);

        /// <summary>ONNX of <see cref="Interaction"/>: [N, Factors].</summary>
        public string InteractionOnnx(OnnxGraphBuilder g, string users, string items, string prefix) =>
            g.Mul(g.Gather(Weights(g, prefix + "user_embedding", UserEmbedding.Weight), users),
                  g.Gather(Weights(g, prefix + "item_embedding", ItemEmbedding.Weight), items));

        public override string ExportOnnx(OnnxGraphBuilder g, string users, string items) =>
            g.Reshape(LinearOnnx(g, "gmf.output", Output, InteractionOnnx(g, users, items, "gmf.")), new long[] { -1 });

        /// <summary>hᵀ(p_u ⊙ q_i) + b for every item: one MatMul against the item table with h folded in.</summary>
        public override string ExportAllItemsOnnx(OnnxGraphBuilder g, string users) =>
            g.Add(AllItemsDotOnnx(g, users, Output.weight!, "gmf."), g.AddWeights("gmf.output_bias", Output.bias!));

        /// <summary>Σ_f p_uf · w_f · q_if for every (user, item): [U, f] × ([I, f] ⊙ w)ᵀ (also NeuMF's GMF branch).</summary>
        public string AllItemsDotOnnx(OnnxGraphBuilder g, string users, Tensor weight, string prefix) =>
            g.MatMul(g.Gather(g.AddWeights(prefix + "user_embedding", UserEmbedding.Weight), users),
                     g.AddWeights(prefix + "item_embedding_weighted_t", (TrainedItemRows(ItemEmbedding.Weight) * weight.view(1, -1)).t()));

        public override void InitializeOutputBias(double logit)
        {
            using (no_grad()) Output.bias!.fill_(LiveScalars.Of(logit)); // a live Scalar (see LiveScalars)
        }

        public override IReadOnlyDictionary<string, int[]> HyperParameters => new Dictionary<string, int[]> { [CollaborativeModels.Factors.Name] = [Factors] };
    }
}

namespace MLNet.DeepRec.Trainers
{
    /// <summary>Generalized Matrix Factorization (NCF's GMF) trained on implicit feedback.</summary>
    public sealed class GmfTrainer : CollaborativeTrainerBase<GmfTrainer.Options>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload.</summary>
        public static class Defaults
        {
            /// <summary>Latent factors: 8 (the NCF paper's).</summary>
            public const int Factors = 8;
            /// <summary>Default number of epochs.</summary>
            public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
        }

        /// <summary>GMF options. Default <see cref="FactorizationTrainerOptions.Factors"/>: 8.</summary>
        public sealed class Options() : FactorizationTrainerOptions(Defaults.Factors);

        internal GmfTrainer(MLContext mlContext, Options options) : base(mlContext, options, CollaborativeModels.Gmf.Name) { }

        private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
            new GmfModule(userCount, itemCount, TrainerOptions.Factors);
    }
}
