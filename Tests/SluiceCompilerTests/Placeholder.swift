import Testing
import SluiceCompiler
import SluiceEmit
import SluiceIR
import SluiceTestSupport

@Test func overallFixtureChecksWithNft() throws {
    let compiled = Compiler.compile(Fixtures.overall)
    #expect(compiled.table.validate() == [])
    let script = NftScript.render(compiled.table)
    print(script)
    try requireKernelTestEnvironment()
    _ = try withNetworkNamespace(label: "check") { ns in
        try ns.runChecked(["nft", "-c", "-f", "-"], input: script)
    }
}
