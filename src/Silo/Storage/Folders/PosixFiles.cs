using System.Runtime.InteropServices;
using System.Text;

namespace HubertEcg.Storage.Folders;

/// <summary>What kind of file system object a path names, without following a symbolic link at its end.</summary>
public enum FileKind
{
    Regular,
    Directory,
    SymbolicLink,
    Fifo,
    Socket,
    CharacterDevice,
    BlockDevice,
    Other,
}

/// <summary>A path's kind, size and last write time (UTC ticks), as one <c>statx</c> call reports them.</summary>
public readonly record struct FileFacts(FileKind Kind, long Length, long LastWriteTicks);

/// <summary>
/// The two POSIX calls .NET does not offer: the kind of a file without opening it (opening a FIFO for reading blocks
/// until a writer comes) and the canonical path with every symbolic link resolved (<c>realpath</c>). On Linux they
/// call the C library (<c>statx</c>, which has the same layout on every architecture, and <c>realpath</c>); elsewhere
/// they fall back to what <see cref="FileSystemInfo"/> tells, which cannot tell a FIFO or device from a file.
/// </summary>
public static class PosixFiles
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const int StatxSize = 256;
    private const int StatxModeOffset = 28;
    private const int StatxSizeOffset = 40;
    private const int StatxMtimeOffset = 112;
    private const int Enoent = 2;
    private const int Enotdir = 20;

    /// <summary>
    /// The kind, size and last write time of <paramref name="path"/>; a symbolic link's own when
    /// <paramref name="followLinks"/> is false. Null when nothing is there (ENOENT, ENOTDIR); throws
    /// <see cref="IOException"/> with the errno as its <see cref="Exception.HResult"/> for any other failure.
    /// </summary>
    public static FileFacts? Stat(string path, bool followLinks)
    {
        if (!OperatingSystem.IsLinux())
        {
            return ManagedStat(path, followLinks);
        }

        var buffer = new byte[StatxSize];
        if (NativeMethods.statx(AtFdCwd, Utf8z(path), followLinks ? 0 : AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is Enoent or Enotdir)
            {
                return null;
            }

            throw Failure("stat", path, errno);
        }

        var mode = BitConverter.ToUInt16(buffer, StatxModeOffset) & 0xF000;
        var kind = mode switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.SymbolicLink,
            0x1000 => FileKind.Fifo,
            0xC000 => FileKind.Socket,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            _ => FileKind.Other,
        };
        var length = (long)BitConverter.ToUInt64(buffer, StatxSizeOffset);
        var seconds = BitConverter.ToInt64(buffer, StatxMtimeOffset);
        var nanoseconds = BitConverter.ToUInt32(buffer, StatxMtimeOffset + 8);
        var ticks = DateTime.UnixEpoch.Ticks + (seconds * TimeSpan.TicksPerSecond) + (nanoseconds / 100);
        return new FileFacts(kind, length, ticks);
    }

    /// <summary>
    /// <paramref name="path"/> with every symbolic link resolved (<c>realpath</c>); null when it, or a link on the
    /// way, names nothing. Throws <see cref="IOException"/> with the errno for any other failure.
    /// </summary>
    public static string? RealPath(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return ManagedRealPath(path);
        }

        var resolved = NativeMethods.realpath(Utf8z(path), IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is Enoent or Enotdir)
            {
                return null;
            }

            throw Failure("resolve", path, errno);
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            NativeMethods.free(resolved);
        }
    }

    private static byte[] Utf8z(string path)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }

    private static IOException Failure(string what, string path, int errno) =>
        new($"cannot {what} '{path}': {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);

    private static FileFacts? ManagedStat(string path, bool followLinks)
    {
        FileSystemInfo info = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
        if (!info.Exists)
        {
            return null;
        }

        if (info.LinkTarget is not null)
        {
            if (!followLinks)
            {
                return new FileFacts(FileKind.SymbolicLink, 0, info.LastWriteTimeUtc.Ticks);
            }

            info = info.ResolveLinkTarget(returnFinalTarget: true) ?? info;
            if (!info.Exists)
            {
                return null;
            }
        }

        return info is FileInfo file
            ? new FileFacts(FileKind.Regular, file.Length, file.LastWriteTimeUtc.Ticks)
            : new FileFacts(FileKind.Directory, 0, info.LastWriteTimeUtc.Ticks);
    }

    private static string? ManagedRealPath(string path)
    {
        var full = Path.GetFullPath(path);
        FileSystemInfo info = Directory.Exists(full) ? new DirectoryInfo(full) : new FileInfo(full);
        if (!info.Exists)
        {
            return null;
        }

        return info.LinkTarget is null ? full : info.ResolveLinkTarget(returnFinalTarget: true)?.FullName;
    }

    private static class NativeMethods
    {
        [DllImport("libc", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int statx(int dirfd, byte[] path, int flags, uint mask, byte[] buffer);

        [DllImport("libc", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern IntPtr realpath(byte[] path, IntPtr resolved);

        [DllImport("libc")]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern void free(IntPtr pointer);
    }
}
