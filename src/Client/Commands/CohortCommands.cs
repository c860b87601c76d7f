using System.CommandLine;
using System.Globalization;
using System.Text;
using Azure;
using Azure.Storage.Blobs;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Hdf5;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using HubertEcg.Storage.Folders;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg cohort synth --input CONTAINER/PREFIX</c>: uploads a synthetic cohort in the formats archives
/// hold (WFDB 500 Hz format 16, WFDB 100 Hz format 212, Challenge <c>.mat</c>, a CODE-15%-layout HDF5 shard, and
/// every clinical format the project writes: GE MUSE, Philips, DICOM, HL7 aECG, SCP-ECG, by its own writers in
/// <see cref="FormatRegistry.Writers"/>) plus a few deliberately corrupt records, for the demo and for trying a deployment.
/// </summary>
public static class CohortCommands
{
    public static Command Build()
    {
        var command = new Command("cohort", "Synthetic cohorts for demos and trials");
        command.Subcommands.Add(BuildSynth());
        return command;
    }

    /// <summary>What a synthetic cohort holds.</summary>
    public sealed record CohortSummary(int Wfdb500, int Wfdb100, int ChallengeMat, int Hdf5Exams, IReadOnlyList<string> Corrupt)
    {
        /// <summary>Records per clinical format (by format name).</summary>
        public IReadOnlyDictionary<string, int> Clinical { get; init; } = new Dictionary<string, int>();

        public int Good => Wfdb500 + Wfdb100 + ChallengeMat + Hdf5Exams + Clinical.Values.Sum();
    }

    private static Command BuildSynth()
    {
        var input = new Option<string>("--input") { Description = "Destination: <container>/<prefix> in the configured blob store", Required = true };
        var records = new Option<int>("--records") { Description = "Good records in all (split across the formats)", DefaultValueFactory = _ => 240 };
        var seconds = new Option<double>("--seconds") { Description = "Length of each record in seconds", DefaultValueFactory = _ => 10 };
        var seed = new Option<int>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 20261124 };
        var command = new Command("synth", "Upload a synthetic mixed-format cohort with a few corrupt records");
        command.Options.Add(input);
        command.Options.Add(records);
        command.Options.Add(seconds);
        command.Options.Add(seed);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            if (FolderInput.IsFolder(parseResult.GetValue(input)!.Trim()))
            {
                throw new ArgumentException("cohort synth uploads to blob storage: --input must be <container>/<prefix>, not a file:// folder");
            }

            var (containerName, prefix) = RunSubmitCommand.SplitInput(parseResult.GetValue(input)!);
            var total = parseResult.GetValue(records);
            var length = parseResult.GetValue(seconds);
            if (total < 4 || length < 5)
            {
                Console.Error.WriteLine("error: --records must be at least 4 and --seconds at least 5");
                return 1;
            }

            var service = Cli.Configuration(parseResult).BlobService();
            var container = service.GetBlobContainerClient(containerName);
            CohortSummary summary;
            try
            {
                await BlobServiceClients.EnsureContainerAsync(container, cancellationToken);
                summary = await UploadAsync(container, prefix, total, length, parseResult.GetValue(seed), cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status == 403)
            {
                throw BlobAccessDeniedException.From(e, service, containerName, BlobAction.Write);
            }

            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"uploaded to {containerName}/{prefix}: {summary.Wfdb500} WFDB 500 Hz, {summary.Wfdb100} WFDB 100 Hz, {summary.ChallengeMat} Challenge .mat, {summary.Hdf5Exams} HDF5 exams, " +
                $"{string.Concat(summary.Clinical.Select(c => $"{c.Value} {c.Key}, "))}{summary.Corrupt.Count} corrupt"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"good={summary.Good} corrupt={summary.Corrupt.Count}"));
            return 0;
        });
        return command;
    }

    public static async Task<CohortSummary> UploadAsync(BlobContainerClient container, string prefix, int total, double seconds, int seed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        var p = prefix.Length == 0 || prefix.EndsWith('/') ? prefix : prefix + "/";
        var hdf5 = Math.Max(1, total / 6);
        var mat = Math.Max(1, total / 6);
        var wfdb100 = Math.Max(1, total / 4);
        var clinicalWriters = FormatRegistry.Writers.Where(w => w.Name != "wfdb").ToList();
        var perClinical = total >= 4 * (clinicalWriters.Count + 4) ? Math.Max(1, total / 24) : 0;
        var wfdb500 = total - hdf5 - mat - wfdb100 - (perClinical * clinicalWriters.Count);
        var n = 0;

        async Task Put(string name, byte[] bytes) =>
            await container.GetBlobClient(p + name).UploadAsync(new BinaryData(bytes), overwrite: true, cancellationToken);

        async Task PutAll(string folder, IReadOnlyDictionary<string, byte[]> files)
        {
            foreach (var (name, bytes) in files)
            {
                await Put($"{folder}/{name}", bytes);
            }
        }

        using var throttle = new SemaphoreSlim(8);
        var uploads = new List<Task>();
        void Queue(Func<Task> upload) => uploads.Add(Task.Run(async () =>
        {
            await throttle.WaitAsync(cancellationToken);
            try
            {
                await upload();
            }
            finally
            {
                throttle.Release();
            }
        }, cancellationToken));

        for (var i = 0; i < wfdb500; i++)
        {
            var name = $"p{i:D5}";
            var signal = SyntheticEcg.Generate(name, seed + n++, 500, seconds);
            Queue(() => PutAll("wfdb500", WfdbWriter.Write(signal, name, 16, 1000)));
        }

        for (var i = 0; i < wfdb100; i++)
        {
            var name = $"lr{i:D5}";
            var signal = SyntheticEcg.Generate(name, seed + n++, 100, seconds);
            Queue(() => PutAll("wfdb100", WfdbWriter.Write(signal, name, 212, 200)));
        }

        for (var i = 0; i < mat; i++)
        {
            var name = $"A{i:D5}";
            var signal = SyntheticEcg.Generate(name, seed + n++, 500, seconds);
            Queue(() => PutAll("challenge", WfdbWriter.WriteChallengeMat(signal, name)));
        }

        // The clinical formats, each 500 Hz, 10 s (a cart's rhythm strip), in a folder named after the format.
        var clinical = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var writer in clinicalWriters)
        {
            clinical[writer.Name] = perClinical;
            for (var i = 0; i < perClinical; i++)
            {
                var name = $"{writer.Name}{i:D5}";
                var signal = SyntheticEcg.Generate(name, seed + n++, 500, 10);
                Queue(() => PutAll(writer.Name, writer.Write(signal, name)));
            }
        }

        var exams = Enumerable.Range(0, hdf5).Select(i => SyntheticEcg.Generate($"exam{i}", seed + n + i, 400, 4096 / 400.0)).ToArray();
        var ids = Enumerable.Range(0, hdf5).Select(i => 9_000_000L + i).ToArray();
        Queue(() => Put("code15/" + Code15ShardWriter.FileName("exams_part0"), Code15ShardWriter.Write(exams, ids)));

        // Deliberately corrupt records: each must be quarantined with its reason, and the run must go on.
        var corrupt = new List<string>();
        var good = SyntheticEcg.Generate("bad", seed - 1, 500, seconds);
        var truncated = new Dictionary<string, byte[]>(WfdbWriter.Write(good, "bad_truncated"));
        truncated["bad_truncated.dat"] = truncated["bad_truncated.dat"][..1000];
        Queue(() => PutAll("corrupt", truncated));
        corrupt.Add("bad_truncated: signal file shorter than the header says");

        var lying = new Dictionary<string, byte[]>(WfdbWriter.Write(good, "bad_length"));
        var header = Encoding.ASCII.GetString(lying["bad_length.hea"]).Split('\n');
        header[0] = "bad_length 12 500 1000000000";
        lying["bad_length.hea"] = Encoding.ASCII.GetBytes(string.Join('\n', header));
        Queue(() => PutAll("corrupt", lying));
        corrupt.Add("bad_length: header claims a billion samples");

        var twoLead = new EcgSignal("bad_twolead", 500, ["I", "II"], [good.Leads[0], good.Leads[1]]);
        Queue(() => PutAll("corrupt", WfdbWriter.Write(twoLead, "bad_twolead")));
        corrupt.Add("bad_twolead: only leads I and II");

        var gain = new Dictionary<string, byte[]>(WfdbWriter.Write(good, "bad_gain"));
        gain["bad_gain.hea"] = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(gain["bad_gain.hea"]).Replace("1000/mV", "abc/mV", StringComparison.Ordinal));
        Queue(() => PutAll("corrupt", gain));
        corrupt.Add("bad_gain: non-numeric gain");

        if (perClinical > 0 && FormatRegistry.WriterFor("scp") is { } scp)
        {
            // One byte changed in the middle of an SCP-ECG file: its CRC no longer matches.
            var damaged = new Dictionary<string, byte[]>(scp.Write(SyntheticEcg.Generate("bad_crc", seed - 2, 500, 10), "bad_crc"));
            var file = damaged.Keys.Single();
            damaged[file] = [.. damaged[file]];
            damaged[file][damaged[file].Length / 2] ^= 0x5A;
            Queue(() => PutAll("corrupt", damaged));
            corrupt.Add("bad_crc: SCP-ECG file whose CRC does not match");
        }

        await Task.WhenAll(uploads);
        return new CohortSummary(wfdb500, wfdb100, mat, hdf5, corrupt) { Clinical = clinical };
    }
}
