using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace HubertEcg.Testing;

/// <summary>
/// A certificate authority of a test's own and server certificates it signs, written as PEM files into a folder: for
/// TLS services a test starts (Azurite over HTTPS, Postgres with <c>ssl=on</c>). Clients trust <see cref="Authority"/>
/// alone through <see cref="TrustsOnly"/>; nothing is added to the machine's trust store.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private TestCertificates(string folder, X509Certificate2 authority)
    {
        Folder = folder;
        Authority = authority;
    }

    /// <summary>The folder holding the PEM files.</summary>
    public string Folder { get; }

    /// <summary>The CA certificate (public part).</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>The CA certificate as PEM, the file a client is told to trust.</summary>
    public string AuthorityFile => Path.Combine(Folder, "ca.pem");

    /// <summary>Creates a new CA named <paramref name="name"/> and writes its certificate to <see cref="AuthorityFile"/>.</summary>
    public static TestCertificates Create(string folder, string name = "HubertEcg test CA")
    {
        Directory.CreateDirectory(folder);
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        var authority = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        var certificates = new TestCertificates(folder, authority);
        File.WriteAllText(certificates.AuthorityFile, authority.ExportCertificatePem());
        return certificates;
    }

    /// <summary>
    /// Signs a server certificate for <paramref name="dnsNames"/> and <paramref name="addresses"/> and writes
    /// <c>NAME.pem</c> and <c>NAME-key.pem</c> (PKCS#8, readable by the owner only); returns both paths.
    /// </summary>
    public (string Certificate, string Key) IssueServer(string name, IReadOnlyList<string> dnsNames, IReadOnlyList<IPAddress> addresses)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={(dnsNames.Count > 0 ? dnsNames[0] : addresses[0].ToString())}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames)
        {
            names.AddDnsName(dns);
        }

        foreach (var address in addresses)
        {
            names.AddIpAddress(address);
        }

        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var signed = request.Create(Authority, now.AddHours(-1), now.AddDays(20), serial);
        var certificate = Path.Combine(Folder, name + ".pem");
        var keyFile = Path.Combine(Folder, name + "-key.pem");
        File.WriteAllText(certificate, signed.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        return (certificate, keyFile);
    }

    /// <summary>
    /// A server certificate check that accepts exactly the chains ending at <paramref name="authority"/> whose leaf
    /// names the host asked for; everything else (the machine's own roots included) is refused.
    /// </summary>
    public static Func<HttpRequestMessage, X509Certificate2?, X509Chain?, SslPolicyErrors, bool> TrustsOnly(X509Certificate2 authority) =>
        (_, certificate, _, errors) =>
        {
            if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
            {
                return false;
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(authority);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return chain.Build(certificate);
        };

    public void Dispose()
    {
        Authority.Dispose();
        if (Directory.Exists(Folder))
        {
            Directory.Delete(Folder, recursive: true);
        }
    }
}
