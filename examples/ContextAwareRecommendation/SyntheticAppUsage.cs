// The example's default data: a small app-usage log in the spirit of frappe (Baltrunas et al. 2015), generated with
// planted structure so that the output can be checked against what was put in.
using System.Globalization;
using System.Text;

namespace ContextAwareRecommendation;

/// <summary>
/// Writes a CSV of (user, app, context) rows with a Boolean "Used" label. Whether a user opens an app depends on
/// pairwise interactions only:
/// <list type="bullet">
/// <item>User × App: each user has a taste for each app category (news, game, music, maps, fitness, weather);</item>
/// <item>App × DayTime: news in the morning, games in the evening and at night, …;</item>
/// <item>App × Weather: fitness apps when it is sunny, games and weather apps when it rains or snows, …;</item>
/// <item>Weekday is pure noise: it is recorded but plays no part in the label.</item>
/// </list>
/// A model without interactions (logistic regression on one-hot columns) can only learn marginal effects: how active a
/// user is, an app's popularity, the busy times of day. The affinity tables have zero row means, so most of the signal
/// is in the pairs, which a factorization machine can learn.
/// </summary>
internal static class SyntheticAppUsage
{
    public static readonly string[] Categories = ["news", "game", "music", "maps", "fitness", "weather"];
    public static readonly string[] DayTimes = ["morning", "afternoon", "evening", "night"];
    public static readonly string[] Weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    public static readonly string[] Weathers = ["sunny", "cloudy", "rainy", "snowy"];

    // Planted category × daytime and category × weather affinities (rows: Categories; each row sums to 0).
    private static readonly double[,] DayTimeAffinity =
    {
        { 1.5, 0.0, -0.5, -1.0 },  // news
        { -1.5, -0.5, 1.0, 1.0 },  // game
        { 0.5, -1.0, 1.0, -0.5 },  // music
        { 1.0, 1.0, -0.5, -1.5 },  // maps
        { 1.5, -0.5, 0.0, -1.0 },  // fitness
        { 1.0, 0.0, 0.0, -1.0 },   // weather
    };
    private static readonly double[,] WeatherAffinity =
    {
        { 0.0, 0.0, 0.0, 0.0 },    // news
        { -1.0, 0.0, 0.5, 0.5 },   // game
        { 0.5, 0.0, -0.5, 0.0 },   // music
        { -0.5, 0.0, 0.0, 0.5 },   // maps
        { 1.5, 0.5, -1.0, -1.0 },  // fitness
        { -1.0, -0.5, 0.5, 1.0 },  // weather
    };

    public const int AppsPerCategory = 20;

    /// <summary>App id "game-07": category and number.</summary>
    public static string AppId(int app) => $"{Categories[app / AppsPerCategory]}-{app % AppsPerCategory:00}";

    /// <summary>Writes <paramref name="rows"/> rows (header <c>Used,User,App,DayTime,Weekday,Weather</c>) to
    /// <paramref name="path"/>; the same arguments always give the same file.</summary>
    public static void WriteCsv(string path, int users = 200, int rows = 30_000, int seed = 1)
    {
        var rng = new Random(seed);
        int apps = Categories.Length * AppsPerCategory;
        // Each user's taste for each category, and a small per-app popularity bias.
        var taste = new double[users, Categories.Length];
        for (int u = 0; u < users; u++)
            for (int c = 0; c < Categories.Length; c++) taste[u, c] = 1.5 * Gaussian(rng);
        var appBias = Enumerable.Range(0, apps).Select(_ => 0.4 * Gaussian(rng)).ToArray();

        var csv = new StringBuilder("Used,User,App,DayTime,Weekday,Weather\n");
        for (int n = 0; n < rows; n++)
        {
            int u = rng.Next(users), app = rng.Next(apps), t = rng.Next(DayTimes.Length), d = rng.Next(Weekdays.Length), w = rng.Next(Weathers.Length);
            int c = app / AppsPerCategory;
            double logit = taste[u, c] + DayTimeAffinity[c, t] + WeatherAffinity[c, w] + appBias[app];
            bool used = rng.NextDouble() < 1 / (1 + Math.Exp(-1.5 * logit));
            csv.Append(CultureInfo.InvariantCulture, $"{(used ? 1 : 0)},u{u},{AppId(app)},{DayTimes[t]},{Weekdays[d]},{Weathers[w]}\n");
        }
        File.WriteAllText(path, csv.ToString());
    }

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
