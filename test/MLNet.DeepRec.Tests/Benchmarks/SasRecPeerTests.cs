using System.Globalization;
using System.Text.RegularExpressions;
using MLNet.DeepRec.Tests.Examples;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Benchmarks;

/// <summary>
/// The SASRec suite's peer comparison (<c>--sasrec-rows peer</c>), run end to end in a child process on a small
/// synthetic <c>user item</c> file with a stub in place of python: a shell script that answers the torch probe and
/// prints what the peer's main.py prints. Guards the process handling (arguments, environment, work folder removed,
/// timeout, nothing left running) and the parsing and table without PyTorch; the real figures come from the runs
/// recorded in docs/benchmarks.md.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SasRecPeerTests
{
    private const string Probe = "if [ \"$1\" = \"-c\" ]; then echo \"1.13.0a0 $OMP_NUM_THREADS\"; exit 0; fi\n";

    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("The stub peer is a POSIX shell script; the peer runs on Linux.");
        _dir = Path.Combine(Path.GetTempPath(), "deeprec-peer-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(_dir, "peers", "sasrec-pytorch"));
        File.WriteAllText(Path.Combine(_dir, "peers", "sasrec-pytorch", "main.py"), "# the stub python never reads this\n");
        WriteSequences(Path.Combine(_dir, "Video.txt"));
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public void StubPeer_ReportsBothImplementationsAndTheRatio_AndRemovesItsWorkFolder()
    {
        WriteStub(Probe + $$"""
            echo "$@" > "{{_dir}}/args.txt"
            echo "$PEER_WORKDIR" > "{{_dir}}/workdir.txt"
            [ -f "$PEER_WORKDIR/data/Video.txt" ] || { echo "no data/Video.txt" >&2; exit 3; }
            [ "$PEER_EVAL" = "1" ] && [ "$OMP_NUM_THREADS" = "1" ] && [ "$PEER_SAMPLER_WORKERS" = "2" ] || { echo "environment" >&2; exit 4; }
            echo "average sequence length: 6.00"
            echo "epoch 1 done at 2.0 s"
            echo "epoch 2 done at 3.5 s"
            printf 'Evaluating....'
            echo "epoch:2, time: 3.500000(s), valid (NDCG@10: 0.1000, HR@10: 0.2000), test (NDCG@10: 0.1234, HR@10: 0.2345)"
            echo "Done"
            """);

        var (exitCode, stdout, stderr, section) = RunPeerRows("--peer-epochs", "2", "--peer-sampler-workers", "2");

        Assert.That(exitCode, Is.EqualTo(0), $"benchmark failed.\nstdout:\n{stdout}\nstderr:\n{stderr}");
        string args = File.ReadAllText(Path.Combine(_dir, "args.txt"));
        Assert.Multiple(() =>
        {
            Assert.That(section, Does.Contain("### Peer: PyTorch SASRec (pmixer), same run"));
            Assert.That(section, Does.Contain("| pmixer/SASRec.pytorch (PyTorch 1.13.0a0, CPU) | OMP_NUM_THREADS=1 (torch reports 1); 2 sampler processes"));
            // The peer's s/epoch: epoch 2 alone (3.5 − 2.0); epoch 1: 2.0; its test metrics as printed.
            Assert.That(section, Does.Match(@"\| pmixer/SASRec\.pytorch [^\n]*\| 1\.5 \| 2\.0 \| 0\.2345 \| 0\.1234 \|"));
            Assert.That(section, Does.Match(@"\| MLNet\.DeepRec SASRec [^\n]*\| 1 libtorch threads[^\n]*\| \d+\.\d \| \d+\.\d \| 0\.\d{4} \| 0\.\d{4} \|"));
            Assert.That(section, Does.Contain("Ratio of seconds per epoch, ours / peer: **"));
            Assert.That(section, Does.Contain("HR@10 0.2000, NDCG@10 0.1000"), "the peer's validation figures");
            Assert.That(section, Does.Not.Contain("did not complete"));
            Assert.That(args, Does.Contain("--dataset Video").And.Contain("--maxlen 50 --hidden_units 50 --num_blocks 2 --num_heads 1 --dropout_rate 0.5 --batch_size 128 --lr 0.001 --num_epochs 2 --device cpu"));
            Assert.That(Directory.Exists(File.ReadAllText(Path.Combine(_dir, "workdir.txt")).Trim()), Is.False, "the peer's work folder must be deleted");
        });
    }

    [Test]
    public void PeerPastItsTimeout_IsStopped_WithNothingLeftRunning()
    {
        // The stub leaves a grandchild holding its output open (as the peer's sampler processes would if it died abruptly).
        WriteStub(Probe + $$"""
            echo "$PEER_WORKDIR" > "{{_dir}}/workdir.txt"
            echo "epoch 1 done at 1.0 s"
            sleep 600 &
            echo $! > "{{_dir}}/grandchild.pid"
            echo $$ > "{{_dir}}/child.pid"
            wait
            """);

        var (exitCode, stdout, stderr, section) = RunPeerRows("--peer-epochs", "2", "--peer-timeout", "2");

        Assert.That(exitCode, Is.EqualTo(0), $"benchmark failed.\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Multiple(() =>
        {
            Assert.That(section, Does.Contain("**The peer did not complete**: timed out after 2 s (--peer-timeout) and was stopped, after 1 of 2 epochs"));
            Assert.That(Directory.Exists(File.ReadAllText(Path.Combine(_dir, "workdir.txt")).Trim()), Is.False, "the peer's work folder must be deleted");
            foreach (string file in new[] { "child.pid", "grandchild.pid" })
                Assert.That(Running(int.Parse(File.ReadAllText(Path.Combine(_dir, file)).Trim(), CultureInfo.InvariantCulture)), Is.False, $"{file}: still running");
        });
    }

    [Test]
    public void MissingPython_SkipsTheComparisonWithAMessage_AndTheSuiteStillRuns()
    {
        var (exitCode, stdout, stderr, section) = RunPeerRows("--peer-python", Path.Combine(_dir, "no-such-python"));

        Assert.That(exitCode, Is.EqualTo(0), $"benchmark failed.\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Multiple(() =>
        {
            Assert.That(section, Does.Contain("| Popularity |"));
            Assert.That(section, Does.Contain("### Peer: PyTorch SASRec (pmixer), same run"));
            Assert.That(section, Does.Contain("Not run in this run: python (").And.Contain("apt-get install -y python3-torch"));
            Assert.That(stdout, Does.Contain("Peer comparison not run"));
        });
    }

    [Test]
    public void UnknownRow_IsRejectedWithTheKnownNames()
    {
        var (exitCode, _, stderr, section) = RunPeerRows("--sasrec-rows", "nope");
        Assert.That(exitCode, Is.EqualTo(0));
        Assert.That(stderr, Does.Contain("Unknown SASRec row 'nope'").And.Contain("mf, bce, sampled-softmax, cross-entropy, gru4rec, peer"));
        Assert.That(section, Is.Empty);
    }

    /// <summary>Runs the sasrec suite with only the peer comparison; returns the suite's section of the report ("" when none).</summary>
    private (int ExitCode, string Stdout, string Stderr, string Section) RunPeerRows(params string[] extra)
    {
        string report = Path.Combine(_dir, "report", "benchmarks.md");
        var args = new List<string> { "--suite", "sasrec", "--games", Path.Combine(_dir, "Video.txt"), "--peers", Path.Combine(_dir, "peers"),
            "--peer-python", Path.Combine(_dir, "python"), "--threads", "1", "--output", report };
        if (!extra.Contains("--sasrec-rows")) args.AddRange(new[] { "--sasrec-rows", "peer" });
        // A later --peer-python wins over the default stub: Arg() takes the first occurrence, so extra options go first.
        args.InsertRange(0, extra);
        string dll = ExampleProcess.ProjectDll(Path.Combine("test", "MLNet.DeepRec.Benchmarks"), "MLNet.DeepRec.Benchmarks");
        var (exitCode, stdout, stderr, _) = ExampleProcess.Run(dll, args, TimeSpan.FromMinutes(4));
        string text = File.Exists(report) ? File.ReadAllText(report) : "";
        var match = Regex.Match(text, "<!-- begin sasrec.*?<!-- end sasrec -->", RegexOptions.Singleline);
        return (exitCode, stdout, stderr, match.Success ? match.Value : "");
    }

    private void WriteStub(string body)
    {
        string path = Path.Combine(_dir, "python");
        File.WriteAllText(path, "#!/bin/sh\n" + body.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>Whether a process with this id is alive (a zombie, dead but not yet reaped by init, counts as gone).</summary>
    private static bool Running(int pid)
    {
        string stat = Path.Combine("/proc", pid.ToString(CultureInfo.InvariantCulture), "stat");
        for (int attempt = 0; attempt < 50; attempt++)
        {
            try
            {
                string text = File.ReadAllText(stat);
                if (text[(text.LastIndexOf(')') + 2)..].StartsWith('Z')) return false;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
            Thread.Sleep(100);
        }
        return true;
    }

    /// <summary>A SASRec-format file (<c>user item</c> lines, each user's in time order): 60 users with 5 to 9 events
    /// over 400 items, plus users with 3 and 2 events (all training in the peer's split).</summary>
    private static void WriteSequences(string path)
    {
        var random = new Random(7);
        using var writer = new StreamWriter(path);
        for (int user = 1; user <= 62; user++)
        {
            int events = user == 61 ? 3 : user == 62 ? 2 : random.Next(5, 10);
            for (int n = 0; n < events; n++) writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{user} {random.Next(1, 401)}"));
        }
    }
}
