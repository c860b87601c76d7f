using HubertEcg.Client.Cluster;
using Microsoft.Extensions.Configuration;

namespace HubertEcg.Unit.Tests.Client;

/// <summary>The client's <c>Cluster</c> section: defaults, the two list forms, and the settings it refuses.</summary>
public sealed class ClusterClientOptionsTests
{
    [Fact]
    public void WithoutTheSectionTheClientUsesPostgresOnly()
    {
        var options = ClusterClientOptions.Load(Configuration());
        Assert.Empty(options.Gateways);
        Assert.Equal(("hubert-ecg", "hubert-ecg", TimeSpan.FromSeconds(5)), (options.ClusterId, options.ServiceId, options.ConnectTimeout));
    }

    [Fact]
    public void GatewaysAreAListOrOneValueSeparatedByCommas()
    {
        var list = ClusterClientOptions.Load(Configuration(
            ("Cluster:Gateways:0", "10.0.0.7:30000"), ("Cluster:Gateways:1", "silo-2.example:30001"), ("Cluster:ConnectTimeout", "00:00:02"),
            ("Cluster:ClusterId", "prod"), ("Cluster:ServiceId", "svc")));
        Assert.Equal(["10.0.0.7:30000", "silo-2.example:30001"], list.Gateways);
        Assert.Equal(("prod", "svc", TimeSpan.FromSeconds(2)), (list.ClusterId, list.ServiceId, list.ConnectTimeout));

        var commas = ClusterClientOptions.Load(Configuration(("Cluster:Gateways", " 127.0.0.1:30000, [::1]:30001 ,")));
        Assert.Equal(["127.0.0.1:30000", "[::1]:30001"], commas.Gateways);
        Assert.True(ClusterClientOptions.TrySplit("[::1]:30001", out var host, out var port));
        Assert.Equal(("::1", 30001), (host, port));
    }

    [Theory]
    [InlineData("Cluster:Gateways:0", "127.0.0.1", "Cluster:Gateways entry '127.0.0.1' is not host:port")]
    [InlineData("Cluster:Gateways:0", "127.0.0.1:0", "Cluster:Gateways entry '127.0.0.1:0' is not host:port")]
    [InlineData("Cluster:Gateways:0", ":30000", "Cluster:Gateways entry ':30000' is not host:port")]
    [InlineData("Cluster:Gateways:0", "host:70000", "Cluster:Gateways entry 'host:70000' is not host:port")]
    [InlineData("Cluster:ConnectTimeout", "00:00:00", "Cluster:ConnectTimeout must be positive")]
    [InlineData("Cluster:ClusterId", " ", "Cluster:ClusterId and Cluster:ServiceId must not be empty")]
    [InlineData("Cluster:ConnectTimeout", "soon", "Cluster:ConnectTimeout")]
    public void SettingsThatCannotWorkAreRefusedNamingTheKey(string key, string value, string message)
    {
        var e = Assert.Throws<InvalidOperationException>(() => ClusterClientOptions.Load(Configuration((key, value))));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    private static IConfiguration Configuration(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, v.Value))).Build();
}
