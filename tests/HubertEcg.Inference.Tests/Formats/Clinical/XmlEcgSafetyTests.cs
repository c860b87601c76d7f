using System.Text;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats.Muse;
using HubertEcg.Inference.Formats.Philips;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>
/// The XML readers (Philips, MUSE) follow no DTD and expand no entity: an external entity naming a local file never
/// brings that file's text into the record or the reason, and nested entities (billion laughs) are not expanded;
/// either way the read fails cleanly or the entity is ignored.
/// </summary>
public sealed class XmlEcgSafetyTests : IDisposable
{
    private const string Marker = "HUBERTECG-XXE-MARKER-7f3a";
    private readonly string _secret = Path.Combine(Path.GetTempPath(), $"hubertecg-xxe-{Guid.NewGuid():N}.txt");

    public XmlEcgSafetyTests() => File.WriteAllText(_secret, Marker);

    public void Dispose() => File.Delete(_secret);

    public static TheoryData<string> Dialects => ["muse", "philips-1.03", "philips-1.04"];

    [Theory]
    [MemberData(nameof(Dialects))]
    public void AnExternalEntityNamingALocalFileIsNotFollowed(string dialect)
    {
        var uri = new Uri(_secret).AbsoluteUri;
        var subset = $"<!ENTITY xxe SYSTEM \"{uri}\"><!ENTITY % p SYSTEM \"{uri}\"> %p;";
        AssertNeitherFollowedNorExpanded(dialect, subset, "&xxe;");
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public void NestedEntitiesAreNotExpanded(string dialect)
    {
        var subset = new StringBuilder("<!ENTITY lol0 \"" + Marker + "\">");
        for (var level = 1; level <= 9; level++)
        {
            subset.Append(System.Globalization.CultureInfo.InvariantCulture, $"<!ENTITY lol{level} \"{string.Concat(Enumerable.Repeat($"&lol{level - 1};", 10))}\">");
        }

        AssertNeitherFollowedNorExpanded(dialect, subset.ToString(), "&lol9;");
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public void AnExternalDtdIsNotFetched(string dialect)
    {
        // A DOCTYPE naming a local DTD that would define the entity: skipped, so the entity is undeclared.
        var dtd = Path.ChangeExtension(_secret, ".dtd");
        File.WriteAllText(dtd, $"<!ENTITY xxe \"{Marker}\">");
        try
        {
            AssertNeitherFollowedNorExpanded(dialect, null, "&xxe;", $"SYSTEM \"{new Uri(dtd).AbsoluteUri}\"");
        }
        finally
        {
            File.Delete(dtd);
        }
    }

    private static void AssertNeitherFollowedNorExpanded(string dialect, string? subset, string reference, string? external = null)
    {
        var (name, files) = Hostile(dialect, subset, reference, external);
        var before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            var record = PhilipsTests.ReadThroughRegistry(files, name);
            PhilipsTests.AssertNoPatientData(record, Marker, "lol");
        }
        catch (EcgFormatException e)
        {
            Assert.Equal(name, e.RecordId);
            Assert.DoesNotContain(Marker, e.ToString(), StringComparison.Ordinal);
        }

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 32L << 20, "reading allocated more than 32 MB");
    }

    /// <summary>A valid file of the dialect whose DOCTYPE declares <paramref name="subset"/>, with <paramref name="reference"/> in the device name.</summary>
    private static (string Name, Dictionary<string, byte[]> Files) Hostile(string dialect, string? subset, string reference, string? external)
    {
        var signal = SyntheticEcg.Generate("x", 31, 500, 2);
        var doctype = external is null ? $"<!DOCTYPE ROOT [{subset}]>" : $"<!DOCTYPE ROOT {external}>";
        if (dialect == "muse")
        {
            var text = MuseTests.Text(MuseWriter.Write(signal, "m"))
                .Replace("<!DOCTYPE RestingECG SYSTEM \"restecg.dtd\">", doctype.Replace("ROOT", "RestingECG", StringComparison.Ordinal), StringComparison.Ordinal)
                .Replace("HubertEcg MuseWriter", reference, StringComparison.Ordinal);
            return ("m", MuseTests.Files("m", text));
        }

        var legacy = dialect == "philips-1.03";
        var bytes = PhilipsWriter.Write(signal, "p", new PhilipsWriterOptions { Version = legacy ? "1.03" : "1.04" })["p.xml"];
        var encoding = legacy ? (Encoding)new UTF8Encoding(false) : Encoding.Unicode;
        var xml = encoding.GetString(bytes).TrimStart('\uFEFF');
        var declarationEnd = xml.IndexOf("?>", StringComparison.Ordinal) + 2;
        xml = xml[..declarationEnd] + doctype.Replace("ROOT", "restingecgdata", StringComparison.Ordinal) + xml[declarationEnd..].Replace("HubertEcg PhilipsWriter", reference, StringComparison.Ordinal);
        return ("p", new Dictionary<string, byte[]> { ["p.xml"] = encoding.GetPreamble().Concat(encoding.GetBytes(xml)).ToArray() });
    }
}
