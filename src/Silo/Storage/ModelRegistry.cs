using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using HubertEcg.Grains;
using HubertEcg.Inference.Model;
using HubertEcg.Storage.Access;
using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>A model registered in blob storage: its descriptor, where its file is and what that file hashes to.</summary>
public sealed record RegisteredModel(ModelDescriptor Descriptor, ModelBlob? Blob, long? FileBytes, DateTime RegisteredAt)
{
    public string ModelId => Descriptor.ModelId;
}

/// <summary>What <see cref="ModelRegistry.RegisterFileAsync"/> did.</summary>
public sealed record ModelRegistration(RegisteredModel Model, bool Uploaded, bool NewRow);

/// <summary>
/// The models kept in blob storage: <see cref="RegisterFileAsync"/> checks an ONNX file, uploads it once under its
/// content address (<c>&lt;model id&gt;/&lt;sha256&gt;.onnx</c> in <paramref name="container"/>) and records it in
/// <c>models</c>; <see cref="FindAsync"/> looks a registered model up by id or name. Registering the same file again
/// changes nothing (a blob that went missing or is damaged is uploaded again). <paramref name="blobs"/> is asked for
/// the blob service only when a file is uploaded.
/// </summary>
public sealed class ModelRegistry(NpgsqlDataSource dataSource, Func<BlobServiceClient> blobs, string container, TransientRetry? retry = null)
{
    private const string Columns =
        "model_id, name, source_hash, architecture::text as architecture, hidden_size, label_codes, untrained, preprocessing_profile, registered_at, " +
        "blob_container, blob_name, file_sha256, file_bytes";

    private readonly TransientRetry _retry = retry ?? TransientRetry.Default;

    /// <summary>
    /// Checks <paramref name="path"/> as <c>run submit</c> does (an exported HuBERT-ECG model whose metadata matches its
    /// graph, with sizes the workers accept), computes its SHA-256, uploads it unless its blob is there with that
    /// content, and records it. Throws <see cref="CheckpointFormatException"/>, <see cref="FileNotFoundException"/> or
    /// <see cref="ArgumentException"/> naming the file and what is wrong, before anything is stored.
    /// </summary>
    public async Task<ModelRegistration> RegisterFileAsync(string path, string? name = null, CancellationToken cancellationToken = default)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"model file {full} does not exist", full);
        }

        var descriptor = ModelDescriptor.FromOnnxFile(full);
        var problems = RunSettingsRules.CheckModel(descriptor.HiddenSize, descriptor.LabelCount);
        if (problems.Count > 0)
        {
            throw new ArgumentException(RunSettingsRules.Describe($"model {full}", problems));
        }

        if (!ModelLocation.IsSha256(descriptor.ModelId))
        {
            throw new ArgumentException($"model {full}: its model id '{descriptor.ModelId}' is not a SHA-256 hex digest: not a model exported by hubert-ecg");
        }

        if (name is not null)
        {
            name = name.Trim();
            PostgresText.Require(name, "model name");
            if (name.Length == 0 || ModelLocation.IsSha256(name))
            {
                throw new ArgumentException($"--name '{name}' cannot name a model: give a non-empty name that is not a 64-digit hex model id");
            }

            descriptor = descriptor with { Name = name };
        }

        string sha256;
        long bytes;
        await using (var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true))
        {
            bytes = stream.Length;
            sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
        }

        var existing = await GetAsync(descriptor.ModelId, cancellationToken);
        if (existing?.Blob is { } known && !string.Equals(known.Sha256, sha256, StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"model {full}: model id {descriptor.ModelId} is registered with a file whose SHA-256 is {known.Sha256}; this file's is {sha256} " +
                "(the same model written differently): submit runs with --model " + descriptor.ModelId);
        }

        var blob = new ModelBlob(container, descriptor.ModelId, sha256);
        var uploaded = await UploadAsync(full, blob, bytes, cancellationToken);
        var newRow = await RecordAsync(descriptor, blob, bytes, renamed: name is not null, cancellationToken);
        var stored = await GetAsync(descriptor.ModelId, cancellationToken)
            ?? throw new InvalidOperationException($"model {descriptor.ModelId} vanished from the models table right after it was registered");
        return new ModelRegistration(stored, uploaded, newRow);
    }

    /// <summary>The registered model with id <paramref name="modelId"/>; null when there is none.</summary>
    public async Task<RegisteredModel?> GetAsync(string modelId, CancellationToken cancellationToken = default)
    {
        var found = await QueryAsync($"select {Columns} from models where model_id = @key", modelId, cancellationToken);
        return found.Count == 0 ? null : found[0];
    }

    /// <summary>
    /// The model <paramref name="idOrName"/> names: a model id, or the name of exactly one registered model. Throws
    /// <see cref="ArgumentException"/> when none is, when a name is ambiguous (listing the candidates), or when the
    /// model was registered before models were kept in blob storage.
    /// </summary>
    public async Task<RegisteredModel> FindAsync(string idOrName, CancellationToken cancellationToken = default)
    {
        var key = idOrName.Trim();
        RegisteredModel found;
        if (ModelLocation.IsSha256(key))
        {
            found = await GetAsync(key, cancellationToken)
                ?? throw new ArgumentException($"--model {key}: no model with this id is registered (and no such file exists); register it with `hubert-ecg model register FILE.onnx`");
        }
        else
        {
            var named = await QueryAsync($"select {Columns} from models where name = @key order by registered_at, model_id", key, cancellationToken);
            var inBlobs = named.Where(m => m.Blob is not null).ToList();
            if (inBlobs.Count > 1)
            {
                var candidates = string.Join("; ", inBlobs.Select(m => $"{m.ModelId} (registered {m.RegisteredAt:u})"));
                throw new ArgumentException($"--model '{key}' is the name of {inBlobs.Count} registered models; give one's id: {candidates}");
            }

            found = inBlobs.Count == 1 ? inBlobs[0]
                : named.Count > 0 ? named[0]
                : throw new ArgumentException($"--model '{key}' is neither a file, a model id nor the name of a registered model (`hubert-ecg model register FILE.onnx --name {key}`)");
        }

        if (found.Blob is null)
        {
            throw new ArgumentException(
                $"--model {key}: model {found.ModelId} was registered before models were kept in blob storage; register its file with `hubert-ecg model register FILE.onnx`");
        }

        return found;
    }

    private async Task<bool> UploadAsync(string path, ModelBlob blob, long bytes, CancellationToken cancellationToken)
    {
        var service = blobs();
        try
        {
            return await UploadAsync(service, path, blob, bytes, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            // A submitter needs Write on the models container (Storage Blob Data Contributor, or a SAS with w and c).
            throw BlobAccessDeniedException.From(e, service, blob.Container, BlobAction.Write, blob.BlobName);
        }
    }

    private static async Task<bool> UploadAsync(BlobServiceClient service, string path, ModelBlob blob, long bytes, CancellationToken cancellationToken)
    {
        var containerClient = service.GetBlobContainerClient(blob.Container);
        await BlobServiceClients.EnsureContainerAsync(containerClient, cancellationToken);
        var client = containerClient.GetBlobClient(blob.BlobName);
        var metadata = new Dictionary<string, string> { ["sha256"] = blob.Sha256, ["model_id"] = blob.ModelId };
        try
        {
            await using var stream = File.OpenRead(path);
            await client.UploadAsync(
                stream,
                new BlobUploadOptions { Metadata = metadata, Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } },
                cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            // There already: kept when it is this file (same length and recorded hash), replaced otherwise.
            var properties = (await client.GetPropertiesAsync(cancellationToken: cancellationToken)).Value;
            if (properties.ContentLength == bytes && properties.Metadata.TryGetValue("sha256", out var recorded) && recorded == blob.Sha256)
            {
                return false;
            }

            await using var stream = File.OpenRead(path);
            await client.UploadAsync(stream, new BlobUploadOptions { Metadata = metadata }, cancellationToken);
            return true;
        }
    }

    /// <summary>Inserts the model's row, or adds the blob to a row registered before by path; true when the row is new.</summary>
    private Task<bool> RecordAsync(ModelDescriptor model, ModelBlob blob, long bytes, bool renamed, CancellationToken cancellationToken) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "insert into models (model_id, name, source_hash, architecture, hidden_size, label_codes, untrained, preprocessing_profile, precision, " +
                    "blob_container, blob_name, file_sha256, file_bytes) " +
                    "values (@id, @name, @hash, @arch, @hidden, @labels, @untrained, @profile, @precision, @container, @blob, @sha, @bytes) " +
                    "on conflict (model_id) do update set blob_container = excluded.blob_container, blob_name = excluded.blob_name, " +
                    "file_sha256 = excluded.file_sha256, file_bytes = excluded.file_bytes, " +
                    "name = case when @renamed then excluded.name else models.name end " +
                    "where models.blob_name is null or models.blob_container <> excluded.blob_container or @renamed " +
                    "returning (xmax = 0)");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Text) { Value = model.ModelId });
                cmd.Parameters.Add(new NpgsqlParameter("name", NpgsqlDbType.Text) { Value = model.Name });
                cmd.Parameters.Add(new NpgsqlParameter("hash", NpgsqlDbType.Text) { Value = model.SourceHash });
                cmd.Parameters.Add(new NpgsqlParameter("arch", NpgsqlDbType.Jsonb) { Value = model.ArchitectureJson });
                cmd.Parameters.Add(new NpgsqlParameter("hidden", NpgsqlDbType.Integer) { Value = model.HiddenSize });
                cmd.Parameters.Add(new NpgsqlParameter("labels", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = model.LabelCodes.ToArray() });
                cmd.Parameters.Add(new NpgsqlParameter("untrained", NpgsqlDbType.Boolean) { Value = model.Untrained });
                cmd.Parameters.Add(new NpgsqlParameter("profile", NpgsqlDbType.Text) { Value = model.PreprocessingProfile });
                cmd.Parameters.Add(new NpgsqlParameter("precision", NpgsqlDbType.Text) { Value = ModelPrecisions.Name(model.Precision) });
                cmd.Parameters.Add(new NpgsqlParameter("container", NpgsqlDbType.Text) { Value = blob.Container });
                cmd.Parameters.Add(new NpgsqlParameter("blob", NpgsqlDbType.Text) { Value = blob.BlobName });
                cmd.Parameters.Add(new NpgsqlParameter("sha", NpgsqlDbType.Text) { Value = blob.Sha256 });
                cmd.Parameters.Add(new NpgsqlParameter("bytes", NpgsqlDbType.Bigint) { Value = bytes });
                cmd.Parameters.Add(new NpgsqlParameter("renamed", NpgsqlDbType.Boolean) { Value = renamed });
                var result = await cmd.ExecuteScalarAsync(ct);
                return result is true;
            },
            cancellationToken);

    private Task<List<RegisteredModel>> QueryAsync(string sql, string key, CancellationToken cancellationToken) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(sql);
                cmd.Parameters.Add(new NpgsqlParameter("key", NpgsqlDbType.Text) { Value = key });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                var models = new List<RegisteredModel>();
                while (await reader.ReadAsync(ct))
                {
                    models.Add(Read(reader));
                }

                return models;
            },
            cancellationToken);

    private static RegisteredModel Read(NpgsqlDataReader r)
    {
        var descriptor = new ModelDescriptor(
            r.Field<string>("model_id"),
            r.Field<string>("name"),
            r.Field<string>("source_hash"),
            r.Field<int>("hidden_size"),
            r.Field<string[]>("label_codes"),
            r.Field<bool>("untrained"),
            r.Field<string>("architecture"),
            r.Field<string>("preprocessing_profile"));
        var container = r.Field<string?>("blob_container");
        var sha = r.Field<string?>("file_sha256");
        var blob = container is null || sha is null ? null : new ModelBlob(container, descriptor.ModelId, sha);
        return new RegisteredModel(descriptor, blob, r.Field<long?>("file_bytes"), r.Field<DateTime>("registered_at"));
    }
}
