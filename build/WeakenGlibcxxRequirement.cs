// MSBuild inline task (compiled by RoslynCodeTaskFactory at build time). See MLNet.DeepRec.targets for why it exists.
#nullable enable
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class DeepRecWeakenGlibcxxRequirement : Task
{
    private const string RequiredVersion = "GLIBCXX_3.4.32";
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    [Required]
    public string Directory { get; set; } = "";

    public override bool Execute()
    {
        if (!System.IO.Directory.Exists(Directory)) return true;
        string[] targets = System.IO.Directory.GetFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories);
        if (targets.Length == 0) return true;

        string? systemLib = FindSystemLibStdCpp();
        if (systemLib == null)
        {
            Log.LogMessage(MessageImportance.Low, "MLNet.DeepRec: no system libstdc++.so.6 found; libLibTorchSharp.so left as shipped.");
            return true;
        }
        if (ContainsAscii(File.ReadAllBytes(systemLib), RequiredVersion + "\0"))
        {
            Log.LogMessage(MessageImportance.Low, $"MLNet.DeepRec: {systemLib} provides {RequiredVersion}; no patch needed.");
            return true;
        }

        foreach (string target in targets)
        {
            try
            {
                string outcome = Weaken(target);
                Log.LogMessage(MessageImportance.Normal, $"MLNet.DeepRec: {target}: {outcome} ({systemLib} lacks {RequiredVersion}).");
            }
            catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
            {
                Log.LogWarning($"MLNet.DeepRec: could not patch {target}: {e.Message}. TorchSharp may fail to load; see docs/troubleshooting.md.");
            }
        }
        return true;
    }

    private static string? FindSystemLibStdCpp()
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6",
            "/usr/lib/libstdc++.so.6",
        };
        foreach (string c in candidates) if (File.Exists(c)) return c;
        return null;
    }

    private static bool ContainsAscii(byte[] haystack, string needle)
    {
        byte[] n = Encoding.ASCII.GetBytes(needle);
        for (int i = 0; i + n.Length <= haystack.Length; i++)
        {
            int j = 0;
            while (j < n.Length && haystack[i + j] == n[j]) j++;
            if (j == n.Length) return true;
        }
        return false;
    }

    /// <summary>Sets VER_FLG_WEAK on the GLIBCXX_3.4.32 vernaux entry of an ELF64 little-endian file, in place.</summary>
    private static string Weaken(string path)
    {
        byte[] elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("not a 64-bit little-endian ELF file");

        ulong shoff = BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        for (int s = 0; s < shnum; s++)
        {
            int sh = checked((int)shoff + s * shentsize);
            if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed) continue;
            int secOffset = checked((int)BitConverter.ToUInt64(elf, sh + 0x18));
            int link = (int)BitConverter.ToUInt32(elf, sh + 0x28);
            int entries = (int)BitConverter.ToUInt32(elf, sh + 0x2C);
            int strSh = checked((int)shoff + link * shentsize);
            int strOffset = checked((int)BitConverter.ToUInt64(elf, strSh + 0x18));

            int vn = secOffset;
            for (int e = 0; e < entries; e++)
            {
                int count = BitConverter.ToUInt16(elf, vn + 2);
                int aux = vn + (int)BitConverter.ToUInt32(elf, vn + 8);
                for (int a = 0; a < count; a++)
                {
                    int nameOffset = strOffset + (int)BitConverter.ToUInt32(elf, aux + 8);
                    if (ReadCString(elf, nameOffset) == RequiredVersion)
                    {
                        ushort flags = BitConverter.ToUInt16(elf, aux + 4);
                        if ((flags & VerFlgWeak) != 0) return "already patched";
                        flags |= VerFlgWeak;
                        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write))
                        {
                            f.Position = aux + 4;
                            f.Write(BitConverter.GetBytes(flags), 0, 2);
                        }
                        return $"marked the {RequiredVersion} requirement weak";
                    }
                    aux += (int)BitConverter.ToUInt32(elf, aux + 12);
                }
                vn += (int)BitConverter.ToUInt32(elf, vn + 12);
            }
        }
        return $"no {RequiredVersion} requirement (nothing to do)";
    }

    private static string ReadCString(byte[] data, int offset)
    {
        int end = offset;
        while (end < data.Length && data[end] != 0) end++;
        return Encoding.ASCII.GetString(data, offset, end - offset);
    }
}
