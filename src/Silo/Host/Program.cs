using HubertEcg.Storage;
using Microsoft.Extensions.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddHubertEcgSources(args);
using var host = builder.Build();
await host.RunAsync();
