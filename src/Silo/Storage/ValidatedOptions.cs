using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace HubertEcg.Storage;

/// <summary>
/// The one way HubertEcg hosts read a configuration section: bound once into the options system, checked by the
/// options class's own rules when the host starts (<c>ValidateOnStart</c>), and taken by consumers as
/// <see cref="IOptions{TOptions}"/>. A section registered twice is bound once: the second call adds nothing.
/// </summary>
public static class ValidatedOptions
{
    /// <summary>
    /// Binds <paramref name="section"/> of <paramref name="configuration"/> to <typeparamref name="T"/> and refuses the
    /// host's start when <paramref name="problems"/> lists anything (each line names its key). Returns the options
    /// builder for further configuration, or null when the section was already registered.
    /// </summary>
    public static OptionsBuilder<T>? AddValidatedOptions<T>(
        this IServiceCollection services, IConfiguration configuration, string section, Func<T, IReadOnlyList<string>> problems)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        if (services.Any(d => d.ServiceType == typeof(IValidateOptions<T>) && d.ImplementationInstance is ProblemsValidator<T>))
        {
            return null;
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<T>>(new ProblemsValidator<T>(problems)));
        return services.AddOptions<T>().Bind(configuration.GetSection(section)).ValidateOnStart();
    }

    /// <summary>Binds <c>Postgres</c> (<see cref="PostgresOptions"/>) once, checked at start.</summary>
    public static IServiceCollection AddPostgresOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<PostgresOptions>(configuration, PostgresOptions.SectionName, o => o.Problems());
        return services;
    }

    /// <summary>
    /// Binds <c>Postgres</c> once and registers the process's <see cref="Access.PostgresConnections"/> built from it (TLS,
    /// Entra ID tokens); a <see cref="Access.PostgresTokenSource"/> registered before replaces the credential's tokens.
    /// </summary>
    public static IServiceCollection AddPostgresConnections(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddPostgresOptions(configuration);
        // A host's tokens are also kept in a token file of its own, for Orleans' ADO.NET providers (a connection string).
        services.TryAddSingleton(sp => new Access.PostgresConnections(
            sp.GetRequiredService<IOptions<PostgresOptions>>().Value, sp.GetService<Access.PostgresTokenSource>(), Access.PostgresConnections.NewTokenFile()));
        return services;
    }

    /// <summary>Binds <c>BlobStorage</c> (<see cref="BlobStorageOptions"/>) once, checked at start.</summary>
    public static IServiceCollection AddBlobStorageOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<BlobStorageOptions>(configuration, BlobStorageOptions.SectionName, o => o.Problems());
        return services;
    }

    /// <summary>
    /// The reasons a host refused its configuration, on one line: the failures of an
    /// <see cref="OptionsValidationException"/> (several, from several sections, when the start-up check found them),
    /// or the binder's message for a value that does not convert to its key's type, with secrets masked
    /// (<see cref="Access.Secrets"/>). Null for any other exception.
    /// </summary>
    public static string? RefusalReasons(Exception exception)
    {
        switch (exception)
        {
            case OptionsValidationException invalid:
                return OneLine(invalid.Message);
            case AggregateException aggregate when aggregate.InnerExceptions.Count > 0:
                var reasons = aggregate.InnerExceptions.Select(RefusalReasons).ToList();
                return reasons.All(r => r is not null) ? string.Join("; ", reasons) : null;
            case InvalidOperationException { Source: "Microsoft.Extensions.Configuration.Binder" } binding:
                return OneLine(binding.InnerException is { } cause ? $"{binding.Message} {cause.Message}" : binding.Message);
            default:
                return null;
        }
    }

    // A value the binder could not convert is quoted in its message: mask what looks like a secret there too.
    private static string OneLine(string text) =>
        Access.Secrets.Redact(string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));

    /// <summary>Fails options whose rules list anything, with those lines as the reasons.</summary>
    private sealed class ProblemsValidator<T>(Func<T, IReadOnlyList<string>> problems) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var found = problems(options);
            return found.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(found);
        }
    }
}
