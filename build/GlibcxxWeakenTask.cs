// Makes TorchSharp's libLibTorchSharp.so load on Linux systems whose libstdc++ predates GCC 13.
//
// libLibTorchSharp.so (TorchSharp 0.107, built with GCC 13) lists GLIBCXX_3.4.32 among the versions it
// needs from libstdc++.so.6, for one symbol only: std::ios_base_library_init(). GCC 13's <iostream>
// emits a bare `.globl` reference to that symbol so that binaries refuse to run against an older
// libstdc++; no relocation uses it, and libstdc++ before GCC 13 initialises iostreams by itself.
// Debian 12 ships GCC 12's libstdc++ (up to GLIBCXX_3.4.30), so the dynamic loader refuses the file.
//
// The patch, done in place on the copy in the build output (never on the NuGet cache):
//   (a) the GLIBCXX_3.4.32 entry of .gnu.version_r gets VER_FLG_WEAK, so a missing version is not fatal;
//   (b) the symbol's entry in .gnu.version becomes VER_NDX_GLOBAL (unversioned), as
//       `patchelf --clear-symbol-version` does;
//   (c) no definition of the symbol is needed, because no relocation refers to it: the dynamic loader
//       only looks up symbols that relocations name. The patch checks this and fails the build, with a
//       message saying so, if a relocation ever does (a future TorchSharp); then a no-op definition in a
//       shim library loaded with RTLD_GLOBAL before TorchSharp would be needed too.
// The patch refuses to run if any other symbol still needs GLIBCXX_3.4.32, and it is idempotent.
// This file is compiled both as an MSBuild inline task (build/TorchSharpNative.targets) and into the tests.
#nullable enable
using System;
using System.IO;
using System.Text;

namespace CptLab.Build
{
#if !CPTLAB_TESTS
    public sealed class GlibcxxWeakenTask : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public string[] Files { get; set; } = Array.Empty<string>();

        /// <summary>The system libstdc++ to test; when it already defines the version, nothing is patched.</summary>
        public string SystemLibStdCxx { get; set; } = "";

        public override bool Execute()
        {
            if (SystemLibStdCxx.Length > 0 && File.Exists(SystemLibStdCxx) && GlibcxxWeakener.DefinesVersion(SystemLibStdCxx, GlibcxxWeakener.Version))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"{SystemLibStdCxx} defines {GlibcxxWeakener.Version}; TorchSharp needs no patch.");
                return true;
            }
            foreach (var file in Files)
            {
                if (!File.Exists(file)) continue;
                try
                {
                    var outcome = GlibcxxWeakener.PatchFile(file);
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, $"{file}: {outcome}");
                }
                catch (Exception e) when (e is InvalidDataException || e is IOException)
                {
                    Log.LogError($"Could not patch {file} for GLIBCXX_3.4.32 (see docs/torchsharp-on-linux.md): {e.Message}");
                    return false;
                }
            }
            return !Log.HasLoggedErrors;
        }
    }

#endif

    public static class GlibcxxWeakener
    {
        public const string Version = "GLIBCXX_3.4.32";
        public const string Symbol = "_ZSt21ios_base_library_initv";
        const uint ShtRela = 4, ShtRel = 9, ShtDynsym = 11, ShtGnuVerneed = 0x6ffffffe, ShtGnuVersym = 0x6fffffff;
        const ushort VerFlgWeak = 0x2, VerNdxGlobal = 1;

        /// <summary>Whether an ELF file (a libstdc++) defines the given symbol version: its name appears in the file as a string.</summary>
        public static bool DefinesVersion(string path, string version)
        {
            var needle = Encoding.ASCII.GetBytes(version + "\0");
            var bytes = File.ReadAllBytes(path);
            for (int i = 0; i + needle.Length <= bytes.Length; i++)
            {
                int j = 0;
                while (j < needle.Length && bytes[i + j] == needle[j]) j++;
                if (j == needle.Length) return true;
            }
            return false;
        }

        /// <summary>Patches the file atomically (temp file, then rename) and says what it did.</summary>
        public static string PatchFile(string path)
        {
            var bytes = File.ReadAllBytes(path);
            var outcome = Patch(bytes);
            if (outcome.StartsWith("already", StringComparison.Ordinal) || outcome.StartsWith("not needed", StringComparison.Ordinal)) return outcome;
            var tmp = path + ".patching";
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
            {
                fs.Write(bytes, 0, bytes.Length);
                fs.Flush(true);
            }
            // netstandard2.0 (what inline tasks compile against) has no File.Move(overwrite); Replace is atomic.
            File.Replace(tmp, path, null);
            return outcome;
        }

        /// <summary>Patches an ELF64 little-endian image in memory; returns a description of what changed.</summary>
        public static string Patch(byte[] elf)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("not a 64-bit little-endian ELF file");

            long shoff = (long)U64(elf, 0x28);
            int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);
            if (shoff <= 0 || shentsize < 64 || shoff + (long)shentsize * shnum > elf.Length)
                throw new InvalidDataException("section header table out of bounds (truncated file?)");

            Section? dynsym = null, verneed = null, versym = null;
            uint dynsymSectionIndex = 0;
            var relocations = new System.Collections.Generic.List<Section>();
            for (int i = 0; i < shnum; i++)
            {
                var s = Section.Read(elf, shoff + (long)i * shentsize);
                if (s.Type != 8 /* SHT_NOBITS */ && s.Offset + s.Size > elf.Length) throw new InvalidDataException($"section {i} lies past the end of the file (truncated file?)");
                if (s.Type == ShtRela || s.Type == ShtRel) relocations.Add(s);
                if (s.Type == ShtDynsym) { dynsym = s; dynsymSectionIndex = (uint)i; }
                else if (s.Type == ShtGnuVerneed) verneed = s;
                else if (s.Type == ShtGnuVersym) versym = s;
            }
            if (dynsym is null || verneed is null || versym is null) return "not needed: no symbol versioning";
            var strtab = Section.Read(elf, shoff + (long)dynsym.Link * shentsize);

            // (a) find the vernaux entry for the version under libstdc++'s verneed.
            int versionIndex = -1;
            bool wasWeak = false;
            long vn = verneed.Offset;
            for (int n = 0; n < (int)verneed.Info; n++)
            {
                int cnt = U16(elf, vn + 2);
                long aux = vn + U32(elf, vn + 8);
                for (int a = 0; a < cnt; a++)
                {
                    if (Str(elf, strtab.Offset + U32(elf, aux + 8)) == Version)
                    {
                        versionIndex = U16(elf, aux + 6) & 0x7fff;
                        ushort flags = U16(elf, aux + 4);
                        wasWeak = (flags & VerFlgWeak) != 0;
                        W16(elf, aux + 4, (ushort)(flags | VerFlgWeak));
                    }
                    aux += U32(elf, aux + 12);
                }
                uint next = U32(elf, vn + 12);
                if (next == 0) break;
                vn += next;
            }
            if (versionIndex < 0) return $"not needed: does not require {Version}";

            // (b) the symbol's version becomes global; no other symbol may still need the version.
            long count = dynsym.Size / 24;
            long symbolIndex = -1;
            bool wasCleared = true;
            for (long i = 0; i < count; i++)
            {
                string name = Str(elf, strtab.Offset + U32(elf, dynsym.Offset + i * 24));
                long vs = versym.Offset + i * 2;
                int idx = U16(elf, vs) & 0x7fff;
                if (name == Symbol)
                {
                    symbolIndex = i;
                    if (idx == versionIndex) { wasCleared = false; W16(elf, vs, VerNdxGlobal); }
                }
                else if (idx == versionIndex)
                    throw new InvalidDataException($"symbol {name} also needs {Version}; this patch only knows {Symbol}");
            }
            if (symbolIndex < 0) throw new InvalidDataException($"{Version} is required but {Symbol} is not among the dynamic symbols");

            // (c) the symbol must stay unresolved without harm: no relocation may name it.
            foreach (var rel in relocations)
            {
                if (rel.Link != dynsymSectionIndex) continue;
                long entry = rel.Type == ShtRela ? 24 : 16;
                for (long at = rel.Offset; at + entry <= rel.Offset + rel.Size; at += entry)
                    if ((long)(U64(elf, at + 8) >> 32) == symbolIndex)
                        throw new InvalidDataException($"a relocation refers to {Symbol}; weakening its version is not enough, a definition must be provided");
            }
            return wasWeak && wasCleared ? "already patched" : $"patched: {Version} weak, {Symbol} unversioned";
        }

        sealed class Section
        {
            public uint Type; public long Offset; public long Size; public uint Link; public uint Info;
            public static Section Read(byte[] b, long at) => new Section
            {
                Type = U32(b, at + 4), Offset = (long)U64(b, at + 24), Size = (long)U64(b, at + 32),
                Link = U32(b, at + 40), Info = U32(b, at + 44),
            };
        }

        static ushort U16(byte[] b, long at) => (ushort)(b[at] | b[at + 1] << 8);
        static uint U32(byte[] b, long at) => BitConverter.ToUInt32(b, checked((int)at));
        static ulong U64(byte[] b, long at) => BitConverter.ToUInt64(b, checked((int)at));
        static void W16(byte[] b, long at, ushort v) { b[at] = (byte)v; b[at + 1] = (byte)(v >> 8); }
        static string Str(byte[] b, long at)
        {
            int end = Array.IndexOf(b, (byte)0, checked((int)at));
            if (end < 0) throw new InvalidDataException("unterminated string in .dynstr");
            return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
        }
    }
}
