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
    /// Dot-product matrix factorization with biases: logit = p_u · q_i + b_u + b_i + b. The strong baseline of
    /// Rendle et al. 2020 ("Neural Collaborative Filtering vs. Matrix Factorization Revisited").
    /// </summary>
    internal sealed class DotProductMFModule : CollaborativeModule
    {
        public DotProductMFModule(int userCount, int itemCount, int factors) : base(CollaborativeModels.MatrixFactorization.Name, userCount, itemCount)
        {
            Factors = factors;
            user_embedding = UserTable(userCount, factors, 0.1);
            item_embedding = ItemTable(itemCount, factors, 0.1);
            user_bias = UserTable(userCount, 1, 0.0);
            item_bias = ItemTable(itemCount, 1, 0.0);
            global_bias = nn.Parameter(zeros(1));
            RegisterComponents();
        }

        public int Factors { get; }
        private readonly EmbeddingTable user_embedding;
        public EmbeddingTable UserEmbedding => user_embedding;
        private readonly EmbeddingTable item_embedding;
        public EmbeddingTable ItemEmbedding => item_embedding;
        private readonly EmbeddingTable user_bias;
        public override EmbeddingTable UserBias => user_bias;
        private readonly EmbeddingTable item_bias;
        public override EmbeddingTable ItemBias => item_bias;
        private readonly TorchSharp.Modules.Parameter global_bias;
        public TorchSharp.Modules.Parameter GlobalBias => global_bias;
        public override float? GlobalBiasValue { get { using var _ = no_grad(); using var scope = NewDisposeScope(); return global_bias.detach().cpu().item<float>(); } }

        public override Tensor forward(Tensor users, Tensor items) =>
            (UserEmbedding.call(users) * ItemEmbedding.call(items)).sum(1)
                .Plus(UserBias.call(users).squeeze(-1)).Plus(ItemBias.call(items).squeeze(-1)).Plus(GlobalBias);

        public override string ExportOnnx(OnnxGraphBuilder g, string users, string items)
        {
            string dot = g.ReduceSum(g.Mul(g.Gather(Weights(g, "mf.user_embedding", UserEmbedding.Weight), users),
                                           g.Gather(Weights(g, "mf.item_embedding", ItemEmbedding.Weight), items)), new long[] { 1 }, keepDims: false);
            string bu = g.Reshape(g.Gather(Weights(g, "mf.user_bias", UserBias.Weight), users), new long[] { -1 });
            string bi = g.Reshape(g.Gather(Weights(g, "mf.item_bias", ItemBias.Weight), items), new long[] { -1 });
            return g.Add(g.Add(g.Add(dot, bu), bi), Weights(g, "mf.global_bias", GlobalBias));
        }

        /// <summary>p_u · Qᵀ + b_iᵀ + (b_u + b): one MatMul against the pre-transposed item table.</summary>
        public override string ExportAllItemsOnnx(OnnxGraphBuilder g, string users) => g.Add(g.Add(
            g.MatMul(g.Gather(g.AddWeights("mf.user_embedding", UserEmbedding.Weight), users), g.AddWeights("mf.item_embedding_t", TrainedItemRows(ItemEmbedding.Weight).t())),
            g.AddWeights("mf.item_bias_row", TrainedItemRows(ItemBias.Weight).t())),
            g.Add(g.Gather(g.AddWeights("mf.user_bias", UserBias.Weight), users), g.AddWeights("mf.global_bias", GlobalBias)));

        /// <summary>p_u · q_i + b_i in one matrix product with the item biases as its initial value (addmm); the user bias
        /// and global bias, constant per user, are the row offset.</summary>
        public override Tensor RankingScores(Tensor users, long first, long count, out Tensor? rowOffset)
        {
            var bi = ItemBias.Weight.narrow(0, first, count).t();                        // [1, count]
            rowOffset = UserBias.call(users).Plus(GlobalBias);                               // [b, 1]
            return addmm(bi, UserEmbedding.call(users), ItemEmbedding.Weight.narrow(0, first, count).t(), 1, 1);
        }

        public override Tensor ScoreItemRange(Tensor users, long first, long count)
        {
            var q = ItemEmbedding.Weight.narrow(0, first, count);
            var bi = ItemBias.Weight.narrow(0, first, count).squeeze(-1);
            return UserEmbedding.call(users).matmul(q.t()).Plus(bi.unsqueeze(0)).Plus(UserBias.call(users)).Plus(GlobalBias);
        }

        public override void InitializeOutputBias(double logit)
        {
            using (no_grad()) global_bias.fill_(LiveScalars.Of(logit)); // a live Scalar (see LiveScalars)
        }

        public override IReadOnlyDictionary<string, int[]> HyperParameters => new Dictionary<string, int[]> { [CollaborativeModels.Factors.Name] = [Factors] };
    }
}

namespace MLNet.DeepRec.Trainers
{
    /// <summary>
    /// Dot-product matrix factorization with user/item/global biases, trained on implicit feedback with BCE or BPR loss.
    /// The baseline every neural model should be compared with (Rendle et al. 2020).
    /// </summary>
    public sealed class BiasedMatrixFactorizationTrainer : CollaborativeTrainerBase<BiasedMatrixFactorizationTrainer.Options>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload.</summary>
        public static class Defaults
        {
            /// <summary>Latent factors: 32.</summary>
            public const int Factors = 32;
            /// <summary>Default number of epochs.</summary>
            public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
        }

        /// <summary>Dot-product MF options. Default <see cref="FactorizationTrainerOptions.Factors"/>: 32.</summary>
        public sealed class Options() : FactorizationTrainerOptions(Defaults.Factors);

        internal BiasedMatrixFactorizationTrainer(MLContext mlContext, Options options) : base(mlContext, options, CollaborativeModels.MatrixFactorization.Name) { }

        private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
            new DotProductMFModule(userCount, itemCount, TrainerOptions.Factors);
    }
}
