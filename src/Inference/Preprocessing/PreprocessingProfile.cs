namespace HubertEcg.Inference.Preprocessing;

/// <summary>The order of the preprocessing steps (see docs/design.md, Pipeline).</summary>
public enum PreprocessingProfile
{
    /// <summary><c>hubert-ecg-2024</c>: resample to 500 Hz, band-pass at 500 Hz, scale. The order in force for the released weights.</summary>
    HubertEcg2024,

    /// <summary><c>hubert-ecg-2025</c>: band-pass at the source rate, resample to 500 Hz, scale. The current upstream code.</summary>
    HubertEcg2025,
}

/// <summary>Profile names as the command line and configuration spell them.</summary>
public static class PreprocessingProfiles
{
    public const string HubertEcg2024Name = "hubert-ecg-2024";
    public const string HubertEcg2025Name = "hubert-ecg-2025";

    public static IReadOnlyList<string> Names { get; } = [HubertEcg2024Name, HubertEcg2025Name];

    public static string Name(this PreprocessingProfile profile) => profile switch
    {
        PreprocessingProfile.HubertEcg2024 => HubertEcg2024Name,
        PreprocessingProfile.HubertEcg2025 => HubertEcg2025Name,
        _ => throw new ArgumentOutOfRangeException(nameof(profile), profile, "unknown preprocessing profile"),
    };

    public static bool TryParse(string? name, out PreprocessingProfile profile)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case HubertEcg2024Name:
                profile = PreprocessingProfile.HubertEcg2024;
                return true;
            case HubertEcg2025Name:
                profile = PreprocessingProfile.HubertEcg2025;
                return true;
            default:
                profile = default;
                return false;
        }
    }

    public static PreprocessingProfile Parse(string name) => TryParse(name, out var profile)
        ? profile
        : throw new ArgumentException($"unknown preprocessing profile '{name}' (expected {string.Join(" or ", Names)})", nameof(name));
}
